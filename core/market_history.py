"""An analyze job's market prices from historical candles: what to ask for, and where each price goes.

A job replays a wallet's history, in which the only swaps are the wallet's own: a peak,
trough or collapse the rest of the market made afterwards is invisible. Historical OHLCV
candles fill that in, as ticks of the pseudo-wallet `oracle:birdeye-ohlcv`
(`core.external_prices.candle_view`). Everything here is pure and deterministic: the same
transactions and candles give the same views, in the same slots.

**What to ask for** (`JobSpan`, `price_windows`): every non-stablecoin mint on either side of
a job wallet's trade, over `[t - margin_s, t + after_s]` around each trade at block time `t`
(`after_s = max(s2e_window_s, bhd_window_s) + rug_confirm_s`: the S2E/BHD windows, and a
RUG crossing inside them confirmed), per mint the union of those intervals, its start
rounded down to a candle boundary. Mints are listed SOL first (it prices every SOL-quoted
trade), then by trade count, then by address: the order in which a request budget is spent.

**Where a candle's prices go** (`candle_points`): a candle starting at `u`, `d` seconds long,
gives up to four prices a quarter of a candle apart — open at `u`, then its two extremes at
`u + d/4` and `u + d/2`, close at `u + 3d/4` — low before high when it closed at or above its
open, high before low otherwise (the usual path assumption: a candle cannot say which came
first). A price equal to the one before it in the same candle is dropped. At 15-minute
candles the prices are 225 s apart, so one BAD_ROUTE reference window (±60 s) holds at most one.

**Event time** (`SlotClock`): a price at time `t` goes at the slot whose (interpolated) block
time is the last at or before `t`, from the job's own `(slot, block_time)` pairs:
- between two of the job's slots `S_i ≤ s < S_j` (times `T_i ≤ t < T_j`): linearly,
  `s = S_i + ⌊(t - T_i)(S_j - S_i) / (T_j - T_i)⌋`; that slot's time is
  `T_i + ⌊(s - S_i)(T_j - T_i) / (S_j - S_i)⌋` (≤ t);
- after the last (`S_L`, `T_L`): 0.4 s a slot, `s = S_L + ⌊5(t - T_L) / 2⌋`, time
  `T_L + ⌊2(s - S_L) / 5⌋`; before the first (`S_0`, `T_0`), the same backwards:
  `s = S_0 - ⌈5(T_0 - t) / 2⌉`, time `T_0 - ⌈2(S_0 - s) / 5⌉` (a slot below 0 is dropped).
A price that lands in one of the job's own slots carries no block time (it takes the
transaction's: a price never moves a transaction's time); in a slot the job made up it
carries that slot's time, so prices after the wallet's last transaction move event time on
(windows close, moments turn final). `merge_by_slot` interleaves the views with the job's
transactions in slot order, transactions first within a slot (the engine orders a slot itself).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.errors import ParseError
from core.external_prices import candle_view
from core.mints import SOL_DECIMALS, SOL_MINT, STABLECOINS
from core.models import ParsedTransaction
from core.thresholds import Thresholds

__all__ = ["OhlcvCandle", "JobSpan", "SlotClock", "candle_points", "price_windows", "window_after_s",
           "market_views", "merge_by_slot", "split_by_slots"]


@dataclass(frozen=True, slots=True)
class OhlcvCandle:
    """One historical candle of `mint` in USD, starting at `start` (unix s), `seconds` long."""

    mint: str
    start: int
    seconds: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def candle_points(candle: OhlcvCandle) -> list[tuple[int, int, Decimal]]:
    """(time, point, price) of the candle's prices, in time order (the module docstring's rule)."""
    u, d = candle.start, candle.seconds
    first, second = (candle.low, candle.high) if candle.close >= candle.open else (candle.high, candle.low)
    out: list[tuple[int, int, Decimal]] = []
    for point, (offset, price) in enumerate(((0, candle.open), (d // 4, first), (d // 2, second),
                                            (3 * d // 4, candle.close))):
        if not out or out[-1][2] != price:
            out.append((u + offset, point, price))
    return out


class SlotClock:
    """Slots for times, interpolated from the job's own `(slot, block_time)` pairs (module docstring)."""

    def __init__(self, pairs: Iterable[tuple[int, int]]) -> None:
        by_slot: dict[int, int] = {}
        for slot, time in pairs:
            by_slot[slot] = max(time, by_slot.get(slot, time))
        self.slots = sorted(by_slot)
        self.times: list[int] = []
        for slot in self.slots:  # block times never go back as slots go forward
            self.times.append(max(by_slot[slot], self.times[-1]) if self.times else by_slot[slot])

    def __bool__(self) -> bool:
        return bool(self.slots)

    def place(self, t: int) -> tuple[int, int | None] | None:
        """(slot, block time for the view: None in one of the job's slots) for time `t`; None before slot 0."""
        slots, times = self.slots, self.times
        i = bisect_right(times, t) - 1
        if i < 0:
            s0, t0 = slots[0], times[0]
            slot = s0 - -(-5 * (t0 - t) // 2)
            return None if slot < 0 else (slot, t0 - -(-2 * (s0 - slot) // 5))
        si, ti = slots[i], times[i]
        if i == len(slots) - 1:
            slot = si + 5 * (t - ti) // 2
            return (si, None) if slot == si else (slot, ti + 2 * (slot - si) // 5)
        sj, tj = slots[i + 1], times[i + 1]  # tj > t >= ti
        slot = si + (t - ti) * (sj - si) // (tj - ti)
        return (si, None) if slot == si else (slot, ti + (slot - si) * (tj - ti) // (sj - si))


class JobSpan:
    """What a job's fetched transactions say about the prices it needs: its `(slot, block_time)`
    pairs, its wallets' trades `(mint, time)` and the mints' decimals. `add` each result."""

    def __init__(self, wallets: Iterable[str]) -> None:
        self.wallets = frozenset(wallets)
        self.pairs: dict[int, int] = {}
        self.trades: list[tuple[str, int]] = []  # (mint, block time) per non-stablecoin side of a trade
        self.decimals: dict[str, int] = {SOL_MINT: SOL_DECIMALS}

    def add(self, raw: Mapping[str, Any]) -> None:
        from core.parse import parse_transaction  # the parser is only needed here
        from core.parse.accounts import mentioned_addresses
        from core.parse.flows import read_token_accounts

        slot, time = raw.get("slot"), raw.get("blockTime")
        if not isinstance(slot, int) or not isinstance(time, int):
            return  # no place in event time: neither a pair nor a trade to price around
        self.pairs[slot] = max(time, self.pairs.get(slot, time))
        try:
            for account in read_token_accounts(raw.get("meta") or {}).values():
                self.decimals.setdefault(account.mint, account.decimals)
            for wallet in sorted(mentioned_addresses(raw) & self.wallets):
                view = parse_transaction(raw, wallet=wallet)
                for trade in () if view.failed else view.trades:
                    self.trades += [(m, time) for m in (trade.mint, trade.quote_mint) if m not in STABLECOINS]
        except ParseError:
            return  # the lane reports it; it has no trades to price


def window_after_s(thresholds: Thresholds) -> int:
    """How long after a trade its prices matter: the S2E/BHD windows, plus RUG's confirmation."""
    return max(thresholds.s2e_window_s, thresholds.bhd_window_s) + thresholds.rug_confirm_s


def price_windows(trades: Iterable[tuple[str, int]], *, margin_s: int, after_s: int,
                  candle_s: int) -> dict[str, list[tuple[int, int]]]:
    """mint -> merged `[from, to]` intervals (unix s, inclusive) to fetch, mints in budget order."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for mint, t in trades:
        spans.setdefault(mint, []).append(((t - margin_s) // candle_s * candle_s, t + after_s))
    out: dict[str, list[tuple[int, int]]] = {}
    for mint in sorted(spans, key=lambda m: (m != SOL_MINT, -len(spans[m]), m)):
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(spans[mint]):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        out[mint] = merged
    return out


def market_views(candles: Mapping[str, Sequence[OhlcvCandle]], clock: SlotClock,
                 decimals: Mapping[str, int]) -> list[ParsedTransaction]:
    """Every candle's prices as views at their slots, in (slot, signature) order."""
    views: list[ParsedTransaction] = []
    if not clock:
        return views
    for mint in sorted(candles):
        for candle in candles[mint]:
            for t, point, price in candle_points(candle):
                placed = clock.place(t)
                if placed is None:
                    continue
                view = candle_view(mint, price, slot=placed[0], block_time=placed[1], candle_start=candle.start,
                                   point=point, decimals=decimals.get(mint))
                if view is not None:
                    views.append(view)
    views.sort(key=lambda v: (v.slot, v.signature))
    return views


def _slot(item: Any) -> int:
    return item["slot"] if isinstance(item, Mapping) else item.slot


def merge_by_slot(txs: Iterable[Any], views: Iterable[ParsedTransaction]) -> list[Any]:
    """Slot-ordered transactions (raw results or views) and views in one slot-ordered list."""
    keyed_txs = ((_slot(tx), 0, n, tx) for n, tx in enumerate(txs))
    keyed_views = ((v.slot, 1, n, v) for n, v in enumerate(views))
    return [item for *_, item in heapq.merge(keyed_txs, keyed_views, key=lambda k: k[:3])]


def split_by_slots(views: Sequence[ParsedTransaction], last_slots: Sequence[int]) -> Iterator[list[ParsedTransaction]]:
    """Slot-ordered `views` cut to go with consecutive parts of a history ending at `last_slots`:
    part i gets those after part i-1's last slot up to its own; one more list holds the rest."""
    start = 0
    for last in last_slots:
        end = start
        while end < len(views) and views[end].slot <= last:
            end += 1
        yield list(views[start:end])
        start = end
    yield list(views[start:])

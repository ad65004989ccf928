"""The price oracle: ticks from every priced swap, per-minute candles, BAD_ROUTE references.

A *tick* is a priced swap of a mint by any wallet, tracked or not: price = USD value of
the quote leg / token amount. `PriceBook.apply_slot` prices one slot's trades, in the
slot's canonical order, in three passes so that arrival order never matters:

1. trades quoted in USDC/USDT (the parser set `price_usd`; stablecoins are $1) — this is
   where SOL's USD price comes from (SOL↔USDC/USDT swaps);
2. SOL-quoted trades, at the latest SOL/USD known at or before the slot (including the
   slot's own SOL/stable swaps: one slot is one instant);
3. token→token swaps: each leg is priced through the latest price of the *other* side as
   it stood after passes 1–2 (the bought mint via the given mint, the given mint via the
   bought one); a side with no known price leaves the other leg unpriced.

Unpriceable trades make no tick (and the engine derives no moments from them). State is
keyed by mint (`MintBook`), so mints can be spread over several price actors; the only
cross-mint inputs are SOL/USD (pass 2) and the other side's price (pass 3).

Peaks and troughs for detectors are tick extremes, delivered per slot as `SlotTicks`.
`PriceBook.peak` / `trough` answer over stored candles, i.e. at minute resolution.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from core.mints import SOL_MINT, STABLECOINS
from core.models import Side, Tick, TradeEvent
from core.snapshot import decode_tick, dumps, encode_tick, loads
from core.thresholds import Thresholds
from core.windows import Watermark, minute_of

__all__ = [
    "Candle",
    "SlotTicks",
    "LegPrices",
    "SlotPricing",
    "MintHistory",
    "Reference",
    "reference_price",
    "MintBook",
    "PriceBook",
]

ONE = Decimal(1)
_PRUNE_EVERY_S = 3_600


@dataclass(slots=True)
class Candle:
    minute: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # token amount traded
    count: int

    def to_list(self) -> list[Any]:
        return [self.minute, str(self.open), str(self.high), str(self.low), str(self.close), str(self.volume), self.count]

    @classmethod
    def from_list(cls, d: list[Any]) -> Candle:
        return cls(d[0], Decimal(d[1]), Decimal(d[2]), Decimal(d[3]), Decimal(d[4]), Decimal(d[5]), d[6])


class SlotTicks(NamedTuple):
    """All ticks of one mint in one slot (pricing order), with their extremes and last price."""

    mint: str
    slot: int
    block_time: int
    ticks: tuple[Tick, ...]
    high: Decimal
    low: Decimal
    close: Decimal


class LegPrices(NamedTuple):
    """USD per unit of a trade's `mint` and (token→token swaps only) of its `quote_mint`."""

    mint: Decimal | None
    quote: Decimal | None = None


class SlotPricing(NamedTuple):
    """What one slot's trades tell the oracle: ticks by mint, prices by (signature, wallet, ix)."""

    slot: int
    block_time: int
    ticks: dict[str, SlotTicks]
    legs: dict[tuple[str, str, int], LegPrices]


class MintHistory(NamedTuple):
    """A new subscriber's start: the latest price and the ticks of the last reference window."""

    mint: str
    last_price: Decimal | None
    last_time: int | None
    ticks: tuple[Tick, ...]


class Reference(NamedTuple):
    price: Decimal
    prices: tuple[Decimal, ...]  # the reference ticks' prices, sorted


def reference_price(
    ticks: Iterable[Tick], t: int, exclude_wallet: str, window: int, min_ticks: int
) -> Reference | None:
    """Median of the ticks within `[t - window, t + window]` from wallets other than
    `exclude_wallet`; None with fewer than `min_ticks` of them (no judgement without a reference)."""
    lo, hi = t - window, t + window
    prices = sorted([k.price_usd for k in ticks if lo <= k.block_time <= hi and k.wallet != exclude_wallet])
    n = len(prices)
    if n < min_ticks or n == 0:
        return None
    mid = n // 2
    median = prices[mid] if n % 2 else (prices[mid - 1] + prices[mid]) / 2
    return Reference(median, tuple(prices))


class MintBook:
    """Price state of one mint: last price, candles, recent ticks."""

    __slots__ = ("last", "last_time", "candles", "recent")

    def __init__(self) -> None:
        self.last: Decimal | None = None
        self.last_time = 0
        self.candles: dict[int, Candle] = {}
        self.recent: deque[Tick] = deque()

    def add(self, tick: Tick, keep_since: int, candles_since: int) -> None:
        price = tick.price_usd
        self.last = price
        self.last_time = tick.block_time
        minute = tick.block_time // 60
        candle = self.candles.get(minute)
        if candle is None:
            self.candles[minute] = Candle(minute, price, price, price, price, tick.amount, 1)
            self.prune(keep_since, candles_since)
        else:
            if price > candle.high:
                candle.high = price
            elif price < candle.low:
                candle.low = price
            candle.close = price
            candle.volume += tick.amount
            candle.count += 1
        recent = self.recent
        recent.append(tick)
        while recent and recent[0].block_time < keep_since:
            recent.popleft()

    def prune(self, keep_since: int, candles_since: int) -> None:
        recent, candles = self.recent, self.candles
        while recent and recent[0].block_time < keep_since:
            recent.popleft()
        first_minute = candles_since // 60
        while candles:
            minute = next(iter(candles))
            if minute >= first_minute:
                break
            del candles[minute]

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": None if self.last is None else str(self.last),
            "last_time": self.last_time,
            "candles": [c.to_list() for c in self.candles.values()],
            "recent": [encode_tick(t) for t in self.recent],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MintBook:
        book = cls()
        book.last = None if d["last"] is None else Decimal(d["last"])
        book.last_time = d["last_time"]
        book.candles = {c[0]: Candle.from_list(c) for c in d["candles"]}
        book.recent = deque(decode_tick(t) for t in d["recent"])
        return book


class PriceBook:
    """Ticks → prices for every mint; feeds shards per slot (see `core.engine`)."""

    def __init__(self, thresholds: Thresholds, candle_horizon_s: int | None = None) -> None:
        self.thresholds = thresholds
        self.ref_window = thresholds.bad_route_ref_window_s
        self.candle_horizon_s = candle_horizon_s or max(thresholds.s2e_window_s, thresholds.bhd_window_s) + 86_400
        self.watermark = Watermark()
        self.mints: dict[str, MintBook] = {}
        self._next_prune = 0

    # -- time ---------------------------------------------------------------------------
    def advance(self, slot: int, block_time: int | None) -> None:
        self.watermark.advance(slot, block_time)
        now = self.watermark.time
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY_S
            keep, candles_since = now - 2 * self.ref_window, now - self.candle_horizon_s
            for book in self.mints.values():
                book.prune(keep, candles_since)

    # -- pricing ------------------------------------------------------------------------
    def apply_slot(self, slot: int, block_time: int, trades: Sequence[TradeEvent]) -> SlotPricing:
        """Price one slot's trades (canonical order) and record their ticks."""
        keep, candles_since = self.watermark.time - 2 * self.ref_window, self.watermark.time - self.candle_horizon_s
        by_mint: dict[str, list[Tick]] = {}
        legs: dict[tuple[str, str, int], LegPrices] = {}
        sol_quoted: list[TradeEvent] = []
        swaps: list[TradeEvent] = []

        mints = self.mints

        def record(trade: TradeEvent, mint: str, price: Decimal, amount: Decimal) -> None:
            tick = Tick(mint, price, amount, slot, block_time, trade.wallet, trade.signature)
            book = mints.get(mint)
            if book is None:
                book = mints[mint] = MintBook()
            book.add(tick, keep, candles_since)
            ticks = by_mint.get(mint)
            if ticks is None:
                by_mint[mint] = [tick]
            else:
                ticks.append(tick)

        for trade in trades:  # pass 1: stable-quoted (and anything already priced)
            if trade.amount <= 0 or trade.quote_amount <= 0:
                continue
            if trade.side is Side.SWAP:
                swaps.append(trade)
                continue
            price = trade.price_usd
            if price is None:
                if trade.quote_mint in STABLECOINS:
                    price = trade.quote_amount / trade.amount
                elif trade.quote_mint == SOL_MINT:
                    sol_quoted.append(trade)
                    continue
                else:
                    continue
            legs[(trade.signature, trade.wallet, trade.ix)] = LegPrices(price)
            record(trade, trade.mint, price, trade.amount)

        if sol_quoted:  # pass 2: SOL-quoted at the slot's SOL/USD
            sol_book = self.mints.get(SOL_MINT)
            sol_usd = None if sol_book is None else sol_book.last
            if sol_usd is not None:
                for trade in sol_quoted:
                    price = trade.quote_amount * sol_usd / trade.amount
                    legs[(trade.signature, trade.wallet, trade.ix)] = LegPrices(price)
                    record(trade, trade.mint, price, trade.amount)

        if swaps:  # pass 3: token→token through the other side's price after passes 1–2
            priced: list[tuple[TradeEvent, Decimal | None, Decimal | None]] = []
            for trade in swaps:
                p_quote = self.latest(trade.quote_mint)
                p_mint = self.latest(trade.mint)
                mint_price = None if p_quote is None else trade.quote_amount * p_quote / trade.amount
                quote_price = None if p_mint is None else trade.amount * p_mint / trade.quote_amount
                priced.append((trade, mint_price, quote_price))
            for trade, mint_price, quote_price in priced:
                legs[(trade.signature, trade.wallet, trade.ix)] = LegPrices(mint_price, quote_price)
                if quote_price is not None:
                    record(trade, trade.quote_mint, quote_price, trade.quote_amount)
                if mint_price is not None:
                    record(trade, trade.mint, mint_price, trade.amount)

        out: dict[str, SlotTicks] = {}
        for mint, ticks in by_mint.items():
            if len(ticks) == 1:
                price = ticks[0].price_usd
                out[mint] = SlotTicks(mint, slot, block_time, (ticks[0],), price, price, price)
            else:
                prices = [t.price_usd for t in ticks]
                out[mint] = SlotTicks(mint, slot, block_time, tuple(ticks), max(prices), min(prices), prices[-1])
        return SlotPricing(slot, block_time, out, legs)

    # -- queries ------------------------------------------------------------------------
    def latest(self, mint: str) -> Decimal | None:
        """Latest tick price of `mint` (None if never priced)."""
        book = self.mints.get(mint)
        return None if book is None else book.last

    def usd(self, mint: str) -> Decimal | None:
        """USD value of one unit: stablecoins are $1, anything else its latest tick."""
        return ONE if mint in STABLECOINS else self.latest(mint)

    def history(self, mint: str) -> MintHistory:
        """Latest price and the ticks of the last reference window (a new subscription's start)."""
        book = self.mints.get(mint)
        if book is None:
            return MintHistory(mint, None, None, ())
        since = self.watermark.time - self.ref_window
        return MintHistory(mint, book.last, book.last_time, tuple(t for t in book.recent if t.block_time >= since))

    def reference(self, mint: str, t: int, exclude_wallet: str) -> Reference | None:
        """BAD_ROUTE reference for a trade at `t` (meaningful once the watermark is past t + window)."""
        book = self.mints.get(mint)
        if book is None:
            return None
        th = self.thresholds
        return reference_price(book.recent, t, exclude_wallet, th.bad_route_ref_window_s, th.bad_route_min_ref_ticks)

    def candles(self, mint: str, start: int, end: int) -> list[Candle]:
        """Stored candles whose minute overlaps `[start, end]`."""
        book = self.mints.get(mint)
        if book is None:
            return []
        lo, hi = minute_of(start), minute_of(end)
        return [c for m, c in book.candles.items() if lo <= m <= hi]

    def peak(self, mint: str, start: int, end: int) -> Decimal | None:
        """Highest price over `[start, end]` at minute resolution (whole edge minutes count)."""
        highs = [c.high for c in self.candles(mint, start, end)]
        return max(highs) if highs else None

    def trough(self, mint: str, start: int, end: int) -> Decimal | None:
        """Lowest price over `[start, end]` at minute resolution (whole edge minutes count)."""
        lows = [c.low for c in self.candles(mint, start, end)]
        return min(lows) if lows else None

    # -- checkpoints --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark.to_list(),
            "next_prune": self._next_prune,
            "mints": {m: b.to_dict() for m, b in self.mints.items()},
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.watermark = Watermark.from_list(d["watermark"])
        self._next_prune = d["next_prune"]
        self.mints = {m: MintBook.from_dict(b) for m, b in d["mints"].items()}

    def snapshot(self) -> bytes:
        return dumps("pricebook", self.to_dict())

    def restore(self, data: bytes) -> None:
        self.load_dict(loads("pricebook", data))

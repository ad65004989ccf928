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
BAD_ROUTE references are computed here too: a shard's `RefRequest` for a trade at `t` is
answered (`RefAnswer`, the median of other wallets' ticks within `t ± ref_window`) when
`advance` moves the watermark past `t + ref_window` — before any pruning, so a gap in
the stream never loses the ticks an answer needs.
`PriceBook.peak` / `trough` answer over stored candles, i.e. at minute resolution.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from core.mints import SOL_MINT, STABLECOINS
from core.models import Side, Tick, TradeEvent
from core.snapshot import dumps, loads
from core.thresholds import Thresholds
from core.trades import TradeRec
from core.ticks import (
    Candle,
    LegPrices,
    MintBook,
    MintHistory,
    Reference,
    RefAnswer,
    RefRequest,
    SlotPricing,
    SlotTicks,
    new_tick,
    reference_price,
)
from core.windows import Watermark, minute_of

__all__ = [
    "PriceBook",
    "DEFAULT_CANDLE_HORIZON_S",
    # re-exported from core.ticks: what the oracle says
    "Candle",
    "SlotTicks",
    "LegPrices",
    "SlotPricing",
    "MintHistory",
    "Reference",
    "RefRequest",
    "RefAnswer",
    "reference_price",
    "MintBook",
]

ONE: Final = Decimal(1)
ZERO: Final = Decimal(0)
SWAP: Final = Side.SWAP
_new_tuple: Final = tuple.__new__  # a NamedTuple from all its fields, without the keyword-parsing __new__
_PRUNE_EVERY_S: Final = 3_600
DEFAULT_CANDLE_HORIZON_S: Final = 86_400


class PriceBook:
    """Ticks → prices for every mint; feeds shards per slot (see `core.engine`).

    Candles older than `candle_horizon_s` are dropped from memory (detectors keep their
    own extremes; a price actor persists candles as it goes), so `candles`/`peak`/`trough`
    answer within that horizon.
    """

    def __init__(self, thresholds: Thresholds, candle_horizon_s: int = DEFAULT_CANDLE_HORIZON_S) -> None:
        self.thresholds = thresholds
        self.ref_window = thresholds.bad_route_ref_window_s
        self._min_ref_ticks = thresholds.bad_route_min_ref_ticks
        self.candle_horizon_s = candle_horizon_s
        self.watermark = Watermark()
        self.mints: dict[str, MintBook] = {}
        self.requests: list[tuple[int, int, RefRequest]] = []  # heap (due, seq, request)
        self._seq = 0
        self._next_prune = 0

    # -- time ---------------------------------------------------------------------------
    def advance(self, slot: int, block_time: int | None) -> list[RefAnswer]:
        """Move the watermark; answer the reference requests whose window it has passed."""
        wm = self.watermark
        if slot > wm.slot:  # wm.advance(slot, block_time), inlined: this runs every slot
            wm.slot = slot
        if block_time is not None and block_time > wm.time:
            wm.time = block_time
        now = wm.time
        answers: list[RefAnswer] = []
        requests = self.requests
        if requests and requests[0][0] < now:
            window, need = self.ref_window, self._min_ref_ticks
            while requests and requests[0][0] < now:
                reply_to, key, mint, t, wallet = heapq.heappop(requests)[2]  # a RefRequest
                book = self.mints.get(mint)
                ref = None if book is None else reference_price(book.recent, t, wallet, window, need)
                answers.append(_new_tuple(RefAnswer, (reply_to, key, ref)))
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY_S
            keep, candles_since = now - 2 * self.ref_window, now - self.candle_horizon_s
            for book in self.mints.values():
                book.prune(keep, candles_since)
        return answers

    def request_reference(self, request: RefRequest) -> None:
        """Answered by `advance` once the watermark is past `request.t + ref_window`."""
        self._seq += 1
        heapq.heappush(self.requests, (request[3] + self.ref_window, self._seq, request))  # request.t

    # -- pricing ------------------------------------------------------------------------
    def apply_slot(self, slot: int, block_time: int, trades: Sequence[TradeEvent]) -> SlotPricing:
        """Price one slot's trades (canonical order) and record their ticks."""
        return self.apply_records(slot, block_time, [TradeRec(t) for t in trades])

    def apply_records(self, slot: int, block_time: int, trades: list[TradeRec]) -> SlotPricing:
        """`apply_slot` on the engine's copies of the trades (`core.trades`)."""
        keep = self.watermark.time - 2 * self.ref_window
        minute = block_time // 60
        by_mint: dict[str, list[Tick]] = {}
        legs: dict[tuple[str, str, int], LegPrices] = {}
        sol_quoted: list[TradeRec] = []
        swaps: list[TradeRec] = []
        mints = self.mints
        # every pass records through `_record`: the tick, the mint's book, the slot's list (a native call)
        priced: list[tuple[TradeRec, Decimal]] = []
        for trade in trades:  # pass 1: stable-quoted (and anything already priced)
            amount = trade.amount
            if amount <= ZERO or trade.quote_amount <= ZERO:
                continue
            if trade.side is SWAP:
                swaps.append(trade)
                continue
            price = trade.price_usd
            if price is None:
                quote = trade.quote_mint
                if quote in STABLECOINS:
                    price = trade.quote_amount / amount
                elif quote == SOL_MINT:
                    sol_quoted.append(trade)
                    continue
                else:
                    continue
                legs[(trade.signature, trade.wallet, trade.ix)] = _new_tuple(LegPrices, (price, None))
            priced.append((trade, price))
        for _pass in (1, 2):
            if _pass == 2:  # pass 2: SOL-quoted at the slot's SOL/USD (pass 1's SOL/stable swaps included)
                if not sol_quoted:
                    break
                sol_book = mints.get(SOL_MINT)
                sol_usd = None if sol_book is None else sol_book.last
                if sol_usd is None:
                    break
                priced = []
                for trade in sol_quoted:
                    price = trade.quote_amount * sol_usd / trade.amount
                    legs[(trade.signature, trade.wallet, trade.ix)] = _new_tuple(LegPrices, (price, None))
                    priced.append((trade, price))
            for trade, price in priced:
                self._record(by_mint, trade, trade.mint, price, trade.amount, slot, block_time, minute, keep)

        if swaps:  # pass 3: token→token through the other side's price after passes 1–2
            swap_prices: list[tuple[TradeRec, Decimal | None, Decimal | None]] = []
            for trade in swaps:
                p_quote = self.latest(trade.quote_mint)
                p_mint = self.latest(trade.mint)
                mint_price = None if p_quote is None else trade.quote_amount * p_quote / trade.amount
                quote_price = None if p_mint is None else trade.amount * p_mint / trade.quote_amount
                swap_prices.append((trade, mint_price, quote_price))
            for trade, mint_price, quote_price in swap_prices:
                legs[(trade.signature, trade.wallet, trade.ix)] = LegPrices(mint_price, quote_price)
                if quote_price is not None:
                    self._record(by_mint, trade, trade.quote_mint, quote_price, trade.quote_amount, slot,
                                 block_time, minute, keep)
                if mint_price is not None:
                    self._record(by_mint, trade, trade.mint, mint_price, trade.amount, slot, block_time, minute, keep)

        out: dict[str, SlotTicks] = {}
        for mint, ticks in by_mint.items():
            if len(ticks) == 1:
                tick = ticks[0]
                price = tick[1]  # Tick.price_usd (an index read: compiled code's fastest)
                out[mint] = _new_tuple(SlotTicks, (mint, slot, block_time, (tick,), price, price, price))
            else:
                prices = [t[1] for t in ticks]
                out[mint] = _new_tuple(
                    SlotTicks, (mint, slot, block_time, tuple(ticks), max(prices), min(prices), prices[-1]))
        return _new_tuple(SlotPricing, (slot, block_time, out, legs))

    def _record(self, by_mint: dict[str, list[Tick]], trade: TradeRec, mint: str, price: Decimal, amount: Decimal,
                slot: int, block_time: int, minute: int, keep: int) -> None:
        """One tick: into the mint's book (candle, recent ticks) and the slot's ticks of that mint."""
        tick = new_tick(mint, price, amount, slot, block_time, trade.wallet, trade.signature)
        mints = self.mints
        book = mints.get(mint)
        if book is None:
            book = mints[mint] = MintBook()
        book.add_at(tick, price, amount, block_time, minute, keep)
        ticks = by_mint.get(mint)
        if ticks is None:
            by_mint[mint] = [tick]
        else:
            ticks.append(tick)

    # -- queries ------------------------------------------------------------------------
    def latest(self, mint: str) -> Decimal | None:
        """Latest tick price of `mint` (None if never priced)."""
        book = self.mints.get(mint)
        return None if book is None else book.last

    def usd(self, mint: str) -> Decimal | None:
        """USD value of one unit: stablecoins are $1, anything else its latest tick."""
        return ONE if mint in STABLECOINS else self.latest(mint)

    def history(self, mint: str) -> MintHistory:
        """Where a new subscription to `mint` starts: its latest price."""
        book = self.mints.get(mint)
        if book is None:
            return MintHistory(mint, None, None)
        return MintHistory(mint, book.last, book.last_time)

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
            "seq": self._seq,
            "requests": [[due, seq, list(r)] for due, seq, r in self.requests],
            "mints": {m: b.to_dict() for m, b in self.mints.items()},
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.watermark = Watermark.from_list(d["watermark"])
        self._next_prune = d["next_prune"]
        self._seq = d["seq"]
        self.requests = [(due, seq, RefRequest(*r)) for due, seq, r in d["requests"]]
        self.mints = {m: MintBook.from_dict(b) for m, b in d["mints"].items()}

    def snapshot(self) -> bytes:
        return dumps("pricebook", self.to_dict())

    def restore(self, data: bytes) -> None:
        self.load_dict(loads("pricebook", data))

"""`PriceWorker`: the price side of the per-slot protocol for one price actor, over a batch.

Exactness with several price actors. `PriceBook.apply_slot` has cross-mint inputs — SOL/USD
for SOL-quoted trades and, for token→token swaps, the other side's latest price — and those
chain: a swap's price feeds the next swap of either mint in a later slot, whichever actor
owns it. Splitting the book by mint would need an exchange between price actors in every
slot with a swap (no batching). So every price actor runs the *whole* `PriceBook` over
*all* trades — pricing is cheap (~15 µs a trade) and deterministic, so all books are equal —
and *owns* (serves, checkpoints candles for) only its mints: the SlotTicks of owned mints
(with their position in the slot's pricing, so shards see them in the engine's order), the
leg prices of trades of owned mints, the histories of owned mints and — the costly part —
the BAD_ROUTE references of owned mints.

References are answered *ahead*: after pricing slot S, the owner registers a reference
request for every leg a tracked wallet traded in S (the mint; for a swap both mints), keyed
by what the answer depends on (`reference_key(mint, t, wallet)`). The book answers them in
the same `advance` as it would have answered the shard's own request, so a shard that
processes the batch after the price actors finds its answer waiting in the right slot.
Histories are answered ahead the same way: as of the end of each slot, for every mint the
shard's views in that slot touch (`PriceInput.wants`).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson

from actors.batching import Router, reference_key
from actors.protocol import PriceInput, PriceMeta, PricePart
from core.models import Side
from core.oracle import PriceBook, RefRequest
from core.thresholds import Thresholds
from core.windows import minute_of
from streams.storage import Candle

__all__ = ["PriceWorker"]


class PriceWorker:
    def __init__(self, thresholds: Thresholds, index: int, price_shards: int, shard_count: int) -> None:
        self.thresholds, self.index = thresholds, index
        self.router = Router(shard_count, price_shards)
        self.book = PriceBook(thresholds)
        # Candles of the minutes still open, cumulative (streams.storage.candles: stored so that
        # writing them again changes nothing); `touched`: written at the next checkpoint.
        self.candles: dict[tuple[str, int], Candle] = {}
        self.touched: set[tuple[str, int]] = set()
        self.newest_minute = 0
        self.last_slot = -1

    def owns(self, mint: str) -> bool:
        return self.router.owner(mint) == self.index

    def run(self, inp: PriceInput) -> tuple[list[PricePart], PriceMeta]:
        started = time.perf_counter()
        n = self.router.shard_count
        parts = [PricePart({}, {}, {}, {}) for _ in range(n)]
        book, owns = self.book, self.owns
        ticks_total = trades_total = 0
        for i, (slot, block_time) in enumerate(inp.slots):
            for answer in book.advance(slot, block_time):
                parts[answer.reply_to].answers.setdefault(i, []).append(answer)
            trades = inp.trades.get(i)
            if trades:
                trades_total += len(trades)
                time_ = book.watermark.time_of(block_time)
                pricing = book.apply_slot(slot, time_, trades)
                for pos, (mint, slot_ticks) in enumerate(pricing.ticks.items()):
                    if not owns(mint):
                        continue
                    ticks_total += len(slot_ticks.ticks)
                    self._candle(slot_ticks)
                    for shard in range(n):
                        if mint in inp.candidates[shard]:
                            parts[shard].ticks.setdefault(i, []).append((pos, slot_ticks))
                self._legs_and_references(i, trades, inp.dests[i], pricing.legs, parts)
            for shard, mints in inp.wants.get(i, {}).items():
                owned = {m: book.history(m) for m in mints if owns(m)}
                if owned:
                    parts[shard].histories[i] = owned
            self.last_slot = slot
        candles = snapshot = None
        if inp.checkpoint:
            candles = self._flush_candles()
            snapshot = self.snapshot()
        meta = PriceMeta(inp.batch, self.index, self.last_slot, trades_total, ticks_total,
                         time.perf_counter() - started, candles, snapshot)
        return parts, meta

    def _legs_and_references(self, i: int, trades: Any, dests: Any, legs: Any, parts: list[PricePart]) -> None:
        book, owns = self.book, self.owns
        asked: set[str] = set()
        for trade, dest in zip(trades, dests):
            if dest < 0:
                continue
            if owns(trade.mint):
                leg = legs.get((trade.signature, trade.wallet, trade.ix))
                if leg is not None:
                    parts[dest].legs.setdefault(i, {})[(trade.signature, trade.wallet, trade.ix)] = leg
            t = book.watermark.time_of(trade.block_time)
            for mint in (trade.mint, trade.quote_mint) if trade.side is Side.SWAP else (trade.mint,):
                key = reference_key(mint, t, trade.wallet)
                if key not in asked and owns(mint):
                    asked.add(key)
                    book.request_reference(RefRequest(dest, key, mint, t, trade.wallet))

    def _candle(self, slot_ticks: Any) -> None:
        # One-tick candles added up by streams.storage's own rule (no price logic here).
        for tick in slot_ticks.ticks:
            key = (tick.mint, minute_of(tick.block_time) * 60)
            p = tick.price_usd
            one = Candle(tick.mint, key[1], p, p, p, p, tick.amount, 1, tick.slot, tick.slot)
            have = self.candles.get(key)
            self.candles[key] = one if have is None else have.merged(one)
            self.touched.add(key)
            self.newest_minute = max(self.newest_minute, key[1])

    def _flush_candles(self) -> tuple[Candle, ...]:
        """The candles touched since the last checkpoint; minutes before the previous one are
        closed (block times wobble by a second or two) and leave memory: a late tick of one
        starts a new candle, which the store adds to the old one (disjoint slots)."""
        out = tuple(self.candles[key] for key in sorted(self.touched))
        self.touched.clear()
        open_since = self.newest_minute - 60
        self.candles = {key: c for key, c in self.candles.items() if key[1] >= open_since}
        return out

    # -- checkpoints --------------------------------------------------------------------
    def snapshot(self) -> bytes:
        # Taken right after `_flush_candles`: the open minutes' candles, all of them stored.
        candles = [[c.mint, c.minute, str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume), c.ticks,
                    c.first_slot, c.last_slot] for c in self.candles.values()]
        return orjson.dumps({"format": "oof-prices", "index": self.index, "price_shards": self.router.price_shards,
                             "last_slot": self.last_slot, "book": self.book.snapshot().decode(),
                             "candles": candles, "newest_minute": self.newest_minute})

    def restore(self, data: bytes | None) -> None:
        self.book, self.candles, self.last_slot = PriceBook(self.thresholds), {}, -1
        self.touched, self.newest_minute = set(), 0
        if data is None:
            return
        doc = orjson.loads(data)
        if doc.get("format") != "oof-prices" or doc["index"] != self.index \
                or doc["price_shards"] != self.router.price_shards:
            raise ValueError("not a checkpoint of this price actor")
        self.book.restore(doc["book"].encode())
        self.last_slot = doc["last_slot"]
        # Checkpoints from before candles were kept (no "candles"): the next ones start anew.
        for mint, minute, o, h, low, c, volume, ticks, first, last in doc.get("candles", ()):
            self.candles[(mint, minute)] = Candle(mint, minute, Decimal(o), Decimal(h), Decimal(low), Decimal(c),
                                                  Decimal(volume), ticks, first, last)
        self.newest_minute = doc.get("newest_minute", 0)

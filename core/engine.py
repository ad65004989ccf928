"""`Engine`: the whole detection pipeline in one process — PriceBook + ShardStates.

Input, in slot order: raw `getTransaction` results (parsed here), `ParsedTransaction`s
or bare `TradeEvent`s (benchmarks, tests), plus optional `advance(slot, block_time)`
heartbeats. Output: moment upserts (`Moment`; the same id again means "replace").

Tracking: with `tracked=None` every fee payer is tracked (its own view of each of its
transactions); with a wallet list, a raw transaction is also parsed for every listed
wallet it mentions (account keys, token-balance owners), so a transfer into a tracked
wallet that someone else paid for is seen. Every priced swap — tracked or not — is a tick.

Determinism
- *Dedup*: each wallet's view of a transaction is processed once, keyed by
  `signature|wallet` (`signature|wallet|ix` for bare TradeEvents). Keys are kept for a
  horizon of `dedup_slots` slots (default 150: a signature can only land within ~150
  slots of its recent blockhash, so any redelivery — or a re-landing on another fork —
  carries a slot within that horizon). Anything older than the horizon is dropped as stale.
- *Canonical order within a slot*: a slot is buffered until a higher slot arrives (or
  `flush()`), then run sorted by (signature, wallet, ix), so arrival order inside a slot
  never changes a result; the moments a slot produces are coalesced per id (last state
  wins) and returned sorted by id (`process_batch(coalesce=True)`: per id over the whole
  batch). Views of an older slot than the last one run are
  processed at once ("late", counted) — input is expected in slot order.
- *Event time only*: every input (failed transactions, transfers and untracked wallets'
  swaps too) advances the watermark; windows close on it. `flush()` runs what is buffered
  but never closes a window: the end of input is not the end of time.
- Same input twice (fresh engines) → same moments; `snapshot()` → `restore()` → continue
  equals an uninterrupted run; `shard_count` 1 and N give the same moments.

Shard / price interface (what a Ray pipeline distributes; here everything is in-process)
For each slot S with block time T, in this order:
1. *Price side* (`PriceBook`, state keyed by mint, so it can be split over price actors by
   mint): `advance(S, T)`, then `apply_slot(S, T, trades)` with **all** trades of the slot
   (tracked or not) → `SlotPricing`: per mint the slot's `SlotTicks` (ticks, high, low,
   close) and the USD price of each trade that came without one. Cross-mint inputs —
   SOL/USD (pass 2) and the other side's price (token→token, pass 3) — are why every
   pipeline price actor prices the whole slot and owns only its mints' outputs.
   `advance(S, T)` also answers the BAD_ROUTE `RefRequest`s whose window `t ± ref_window`
   the watermark has now passed (`RefAnswer`, routed back by `reply_to` = shard id).
2. *Shard side* (`ShardState`, wallets routed by `core.routing.shard_for`), each shard:
   `on_references(its RefAnswers)` → `advance(S, T)` (windows/timers due by T fire on
   data up to S-1; answered BAD_ROUTE judgements are made) → `on_prices(SlotTicks of
   the mints in shard.watched)` → `apply(tx, pricing.legs)` for its wallets' transactions
   → `take_history_requests()`, answered with `on_history(PriceBook.history(mint))`
   (the latest price) for mints it started watching in S, and `take_reference_requests()`,
   sent to the price side (`PriceBook.request_reference`).
So per slot a shard receives exactly: the watermark, the SlotTicks of the mints it
watches, the USD prices of its own unpriced trades, the latest price of newly watched
mints and the answers to its reference requests, and acts on watermark S only after the
slot-S price delivery (possibly empty): its clock never runs ahead of its price data. A
price actor answers a request only once its own watermark is past the request's window,
so answers never depend on which actor was faster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Final

from mypy_extensions import mypyc_attr

from core.models import Moment, MomentKind, ParsedTransaction, TradeEvent
from core.oracle import LegPrices, PriceBook, SlotTicks
from core.routing import shard_for
from core.snapshot import decode_parsed, dumps, encode_parsed, loads
from core.state import ShardState, WalletTx
from core.thresholds import Thresholds
from core.trades import EventView as _EventView  # (actors.wire registers its pickling under this name)
from core.trades import Run as _Run
from core.trades import TradeRec, run_of
from core.windows import Watermark

__all__ = ["Engine", "EngineStats", "DEFAULT_DEDUP_SLOTS"]

DEFAULT_DEDUP_SLOTS: Final = 150
_NO_TICKS: Final[dict[str, SlotTicks]] = {}
_KIND_VALUE: Final = {kind: kind.value for kind in MomentKind}  # `Enum.value` is a Python-level property
_NO_LEGS: Final[dict[tuple[str, str, int], LegPrices]] = {}
Input = Mapping[str, Any] | ParsedTransaction | TradeEvent


@dataclass(slots=True)
class EngineStats:
    inputs: int = 0  # transactions / trade events offered
    views: int = 0  # wallet views processed
    slots: int = 0
    trades: int = 0
    ticks: int = 0
    duplicates: int = 0
    stale: int = 0
    late: int = 0
    upserts: Counter[str] = field(default_factory=Counter)


@mypyc_attr(allow_interpreted_subclasses=True)  # actors.assembler.SlotAssembler overrides _parse/_run_slot
class Engine:
    """In-process detection engine (see the module docstring for its guarantees)."""

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        shard_count: int = 1,
        tracked: Iterable[str] | None = None,
        dedup_slots: int = DEFAULT_DEDUP_SLOTS,
    ) -> None:
        if shard_count < 1:
            raise ValueError("shard_count must be at least 1")
        self.thresholds = thresholds or Thresholds()  # type: ignore[call-arg]  # (all fields have defaults)
        self.shard_count = shard_count
        self.tracked: frozenset[str] | None = None if tracked is None else frozenset(tracked)
        self.dedup_slots = dedup_slots
        self.book = PriceBook(self.thresholds)
        self.shards = [ShardState(self.thresholds, i) for i in range(shard_count)]
        self.watermark = Watermark()
        self.stats = EngineStats()
        self._route: dict[str, int] = {}
        self._last_slot = -1  # last slot run
        self._max_slot = -1  # highest slot offered
        self._buf_slot: int | None = None
        self._buf_time: int | None = None
        self._buf: list[WalletTx] = []
        self._buf_order: list[tuple[str, str, int, int]] = []  # per buffered view: (sig, wallet, ix, position)
        self._seen: set[str] = set()
        # the keys of `_seen` in arrival order and their slots, live from `_seen_head` on: two lists
        # rather than pairs (no tuple per input), lists rather than deques (compiled code appends
        # to a list directly, a deque's methods are Python calls); the dead front is cut in bulk
        self._seen_slots: list[int] = []
        self._seen_keys: list[str] = []
        self._seen_head = 0
        self._coalescing = False  # inside process_batch(coalesce=True): deferred upserts wait for its end

    # -- input ----------------------------------------------------------------------------
    def process(self, item: Input) -> list[Moment]:
        """Offer one input; returns the upserts of whatever slot it completed."""
        self.stats.inputs += 1
        if isinstance(item, TradeEvent):
            view = _EventView(item)
            sig, wallet, ix = view.signature, view.wallet, view.ix
            return self._offer(f"{sig}|{wallet}|{ix}", view, view.slot, view.block_time, sig, wallet, ix)
        if isinstance(item, ParsedTransaction):
            return self._offer_parsed(item)
        out: list[Moment] = []
        for parsed in self._parse(item):
            out += self._offer_parsed(parsed)
        return out

    def _offer_parsed(self, view: ParsedTransaction) -> list[Moment]:
        sig, wallet, trades = view.signature, view.wallet, view.trades
        return self._offer(f"{sig}|{wallet}", view, view.slot, view.block_time, sig, wallet,
                           trades[0].ix if trades else -1)

    def process_batch(self, items: Iterable[Input], *, coalesce: bool = False) -> list[Moment]:
        """`process` each item; the upserts of every slot run, in order.

        `coalesce=True`: the batch's upserts coalesced per id (last state wins), sorted by id —
        what a pipeline shard hands the sink per batch. Every moment reaches the same final
        state; only intermediate states inside the batch are skipped, so S2E and BHD build
        each moment once per batch instead of at every new extreme (`ShardContext.deferred`)."""
        out: list[Moment] = []
        if not coalesce:
            for item in items:
                out += self.process(item)
            return out
        self._coalescing = True
        try:
            for item in items:
                found = self.process(item)
                if found:
                    out += found
        finally:
            self._coalescing = False
        out += self._take_deferred()
        if len(out) < 2:
            return out
        last = {m.id: m for m in out}
        return [last[k] for k in sorted(last)]

    def advance(self, slot: int, block_time: int | None) -> list[Moment]:
        """A heartbeat: event time reached `(slot, block_time)` without a transaction."""
        out = self._roll(slot)
        if slot > self._last_slot and (self._buf_slot is None or slot >= self._buf_slot):
            self._buf_slot = slot
            if block_time is not None and (self._buf_time is None or block_time > self._buf_time):
                self._buf_time = block_time
        return out

    def flush(self) -> list[Moment]:
        """Run the buffered slot now. Closes no window: nothing is assumed about the future."""
        out = self._run_buffer()
        rest = self._take_deferred()  # left by a coalesced batch that raised
        return out + rest if rest else out

    def _take_deferred(self) -> list[Moment]:
        out: list[Moment] = []
        for shard in self.shards:
            if shard.ctx.deferred:
                out += shard.take_upserts()
        if out:
            upserts = self.stats.upserts
            for moment in out:
                upserts[_KIND_VALUE[moment.kind]] += 1
        return out

    def _parse(self, raw: Mapping[str, Any]) -> list[ParsedTransaction]:
        from core.parse import parse_transaction  # the parser is only needed for raw input
        from core.parse.accounts import mentioned_addresses

        main = parse_transaction(raw)
        views = [main]
        if self.tracked:
            for wallet in sorted(mentioned_addresses(raw) & self.tracked - {main.wallet}):
                view = parse_transaction(raw, wallet=wallet)
                if view.trades or any(view.flows.values()):
                    views.append(view)
        return views

    def _roll(self, slot: int) -> list[Moment]:
        if slot > self._max_slot:
            self._max_slot = slot
            floor = slot - self.dedup_slots
            slots, keys, seen = self._seen_slots, self._seen_keys, self._seen
            head, n = self._seen_head, len(slots)
            while head < n and slots[head] < floor:
                seen.discard(keys[head])
                head += 1
            if head > 4_096 and head * 2 > n:
                del slots[:head]
                del keys[:head]
                head = 0
            self._seen_head = head
        if self._buf_slot is not None and slot > self._buf_slot:
            return self._run_buffer()
        return []

    def _offer(self, key: str, view: WalletTx, slot: int, block_time: int | None, sig: str, wallet: str,
               ix: int) -> list[Moment]:
        """`key` deduplicates; (sig, wallet, ix) is the view's place in the canonical order."""
        if slot == self._buf_slot and slot >= self._max_slot - self.dedup_slots and key not in self._seen:
            # the common case, spelled out: a new view of the slot being buffered
            self._seen.add(key)
            self._seen_slots.append(slot)
            self._seen_keys.append(key)
            self._buf_order.append((sig, wallet, ix, len(self._buf)))
            self._buf.append(view)
            if block_time is not None and (self._buf_time is None or block_time > self._buf_time):
                self._buf_time = block_time
            return []
        out = self._roll(slot) if slot != self._buf_slot else []
        stats = self.stats
        if slot < self._max_slot - self.dedup_slots:
            stats.stale += 1
            return out
        if key in self._seen:
            stats.duplicates += 1
            return out
        self._seen.add(key)
        self._seen_slots.append(slot)
        self._seen_keys.append(key)
        if slot <= self._last_slot:
            stats.late += 1
            return out + self._run_slot(slot, block_time, [view])
        if self._buf_slot is not None and slot < self._buf_slot:  # an older slot not run yet: run it first
            return out + self._run_slot(slot, block_time, [view])
        self._buf_slot = slot
        self._buf_order.append((sig, wallet, ix, len(self._buf)))
        self._buf.append(view)
        if block_time is not None and (self._buf_time is None or block_time > self._buf_time):
            self._buf_time = block_time
        return out

    # -- one slot -----------------------------------------------------------------------
    def _run_buffer(self) -> list[Moment]:
        if self._buf_slot is None:
            return []
        slot, block_time, views, order = self._buf_slot, self._buf_time, self._buf, self._buf_order
        self._buf_slot, self._buf_time, self._buf, self._buf_order = None, None, [], []
        if len(views) > 1:  # canonical order: (signature, wallet, ix), ties in arrival order (the 4th item)
            order.sort()
            views = [views[k[3]] for k in order]
        return self._run_slot(slot, block_time, views)

    def _run_slot(self, slot: int, block_time: int | None, views: list[WalletTx]) -> list[Moment]:
        stats = self.stats
        stats.slots += 1
        stats.views += len(views)
        wm = self.watermark
        if slot > wm.slot:  # wm.advance(slot, block_time), inlined
            wm.slot = slot
        if block_time is not None and block_time > wm.time:
            wm.time = block_time
        if slot > self._last_slot:
            self._last_slot = slot
        time = wm.time if block_time is None else block_time
        book = self.book
        answers = book.advance(slot, block_time)
        runs = [v if isinstance(v, _Run) else run_of(v) for v in views]
        trades = [t for r in runs if not r.failed for t in r.recs]
        if trades:
            pricing = book.apply_records(slot, time, trades)
            _, _, slot_ticks, legs = pricing  # (NamedTuple attribute reads are slow in 3.11)
            stats.trades += len(trades)
            stats.ticks += sum([len(s[3]) for s in slot_ticks.values()])  # SlotTicks.ticks
        else:
            slot_ticks, legs = _NO_TICKS, _NO_LEGS

        tracked = self.tracked
        out: list[Moment] = []
        mine_of: list[list[_Run]]
        if self.shard_count == 1:
            mine_of = [[r for r in runs if r.wallet in tracked] if tracked is not None else runs]
        else:
            mine_of = [[] for _ in self.shards]
            for run in runs:
                if tracked is None or run.wallet in tracked:
                    mine_of[self._shard_of(run.wallet)].append(run)
        for shard, mine in zip(self.shards, mine_of):
            if answers:
                shard_id = shard.shard_id
                shard.on_references([a for a in answers if a[0] == shard_id])  # RefAnswer.reply_to
            found = shard.advance(slot, block_time)
            if found:
                out += found
            if slot_ticks and shard.ctx.watched:
                found = shard.on_prices(slot_ticks.values())  # it keeps the mints it watches
                if found:
                    out += found
            for r in mine:
                found = shard.apply_records(r.wallet, r.signature, r.slot, r.block_time, r.failed, r.flows, r.recs, legs)
                if found:
                    out += found
            ctx = shard.ctx
            if ctx.history_requests:
                shard.on_history([book.history(m) for m in shard.take_history_requests()])
            if ctx.reference_requests:
                for request in shard.take_reference_requests():
                    book.request_reference(request)
        if out:
            upserts = stats.upserts
            for moment in out:
                upserts[_KIND_VALUE[moment.kind]] += 1
        if not self._coalescing:
            deferred = self._take_deferred()  # (counted there)
            if deferred:
                out += deferred
        if len(out) < 2:
            return out
        last = {m.id: m for m in out}
        return [last[k] for k in sorted(last)]

    def _shard_of(self, wallet: str) -> int:
        shard = self._route.get(wallet)
        if shard is None:
            shard = self._route[wallet] = shard_for(wallet, self.shard_count)
        return shard

    # -- checkpoints ----------------------------------------------------------------------
    def snapshot(self) -> bytes:
        return dumps("engine", {
            "config": {"shard_count": self.shard_count, "dedup_slots": self.dedup_slots,
                       "thresholds": self.thresholds.model_dump(mode="json")},
            "watermark": self.watermark.to_list(),
            "last_slot": self._last_slot,
            "max_slot": self._max_slot,
            "buffer": {"slot": self._buf_slot, "time": self._buf_time, "views": [encode_parsed(v) for v in self._buf]},
            "seen": [[slot, key] for slot, key in zip(self._seen_slots[self._seen_head:],
                                                      self._seen_keys[self._seen_head:])],
            "book": self.book.to_dict(),
            "shards": [s.to_dict() for s in self.shards],
            "stats": {**{k: v for k, v in asdict(self.stats).items() if k != "upserts"},
                      "upserts": dict(sorted(self.stats.upserts.items()))},
        })

    def restore(self, data: bytes) -> None:
        body = loads("engine", data)
        config = body["config"]
        if config["shard_count"] != self.shard_count:
            raise ValueError(f"snapshot has {config['shard_count']} shards, engine has {self.shard_count}")
        if Thresholds.model_validate(config["thresholds"]) != self.thresholds:
            raise ValueError("snapshot was taken with different thresholds")
        self.watermark = Watermark.from_list(body["watermark"])
        self._last_slot, self._max_slot = body["last_slot"], body["max_slot"]
        buffer = body["buffer"]
        self._buf_slot, self._buf_time = buffer["slot"], buffer["time"]
        self._buf = [decode_parsed(v) for v in buffer["views"]]
        self._buf_order = [(*_canonical(v), k) for k, v in enumerate(self._buf)]
        self._seen_slots = [slot for slot, _ in body["seen"]]
        self._seen_keys = [key for _, key in body["seen"]]
        self._seen_head = 0
        self._seen = set(self._seen_keys)
        self.book.load_dict(body["book"])
        for shard, state in zip(self.shards, body["shards"]):
            shard.load_dict(state)
        stats = dict(body["stats"])
        self.stats = EngineStats(**{**stats, "upserts": Counter(stats["upserts"])})


def _canonical(view: WalletTx) -> tuple[str, str, int]:
    return (view.signature, view.wallet, view.trades[0].ix if view.trades else -1)

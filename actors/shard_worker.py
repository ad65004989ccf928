"""`ShardWorker`: one shard's side of the per-slot protocol over a batch, from the price parts.

For each slot of the batch, in the engine's order (`core.engine`): BAD_ROUTE answers →
`advance` → `on_prices` (the owned SlotTicks of every price actor, put back in the slot's
pricing order, filtered by what the shard watches) → `apply` each of its views with the
leg prices → history requests answered from the prefetched histories → reference
requests parked until their answer arrives. Every slot of the batch advances the
watermark, also those without views here, and only after the price actors delivered
that slot: the shard's clock never runs ahead of its price data.

A reference request is matched to the price actors' answer by `reference_key` (mint, time,
wallet: all the answer depends on); parked requests are part of the checkpoint. A slot's
upserts are coalesced per id, sorted by id, as the engine returns them; the deferred ones
(`ShardState.take_upserts`) are built once at the end of the batch, as
`Engine.process_batch(coalesce=True)` does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from actors.batching import reference_key
from actors.protocol import PricePart, ShardInput, ShardResult
from core.oracle import RefAnswer, RefRequest
from core.state import ShardState
from core.thresholds import Thresholds

__all__ = ["ShardWorker", "HistoryMiss"]


class HistoryMiss(LookupError):
    """A detector asked for the history of a mint the ingest did not plan for (a planning bug)."""


class ShardWorker:
    def __init__(self, thresholds: Thresholds, shard_id: int, shard_count: int) -> None:
        self.thresholds, self.shard_id, self.shard_count = thresholds, shard_id, shard_count
        self.state = ShardState(thresholds, shard_id)
        self.parked: dict[str, list[RefRequest]] = {}
        self.last_slot = -1
        self._watched: frozenset[str] = frozenset()

    def run(self, inp: ShardInput, parts: Sequence[PricePart]) -> ShardResult:
        started = time.perf_counter()
        state, parked = self.state, self.parked
        out: list[Any] = []
        views_done = 0
        for i, (slot, block_time) in enumerate(inp.slots):
            found: list[Any] = []
            answers = [a for part in parts for a in part.answers.get(i, ())]
            if answers:
                matched = [RefAnswer(r.reply_to, r.key, a.reference)
                           for a in answers for r in parked.pop(a.key, ())]
                if matched:
                    state.on_references(matched)
            found += state.advance(slot, block_time)
            watched = state.watched
            if watched:
                ticks = [pt for part in parts for pt in part.ticks.get(i, ()) if pt[1].mint in watched]
                if ticks:
                    ticks.sort(key=_position)
                    found += state.on_prices([slot_ticks for _, slot_ticks in ticks])
            views = inp.views.get(i)
            if views:
                legs: dict[Any, Any] = {}
                for part in parts:
                    legs.update(part.legs.get(i, ()))
                for view in views:
                    found += state.apply(view, legs)
                views_done += len(views)
            requests = state.take_history_requests()
            if requests:
                state.on_history([self._history(parts, i, slot, mint) for mint in requests])
            for request in state.take_reference_requests():
                parked.setdefault(reference_key(request.mint, request.t, request.wallet), []).append(request)
            if len(found) > 1:  # like the engine: a slot's upserts coalesced per id (last state wins)
                last = {m.id: m for m in found}
                found = [last[k] for k in sorted(last)]
            out += found
            self.last_slot = slot
        out += state.take_upserts()  # S2E/BHD: their last state in the batch (the sink keeps only that)
        now = frozenset(state.watched)
        changed = None if now == self._watched else now
        self._watched = now
        snapshot = self.snapshot() if inp.checkpoint else None
        return ShardResult(inp.batch, self.shard_id, out, self.last_slot, views_done, changed,
                           time.perf_counter() - started, snapshot)

    @staticmethod
    def _history(parts: Sequence[PricePart], i: int, slot: int, mint: str) -> Any:
        for part in parts:
            found = part.histories.get(i, {}).get(mint)
            if found is not None:
                return found
        raise HistoryMiss(f"no history of {mint} was planned for slot {slot}")

    # -- checkpoints --------------------------------------------------------------------
    def snapshot(self) -> bytes:
        return orjson.dumps({
            "format": "oof-shard", "shard": self.shard_id, "shard_count": self.shard_count,
            "last_slot": self.last_slot, "state": self.state.snapshot().decode(),
            "parked": [[key, [list(r) for r in reqs]] for key, reqs in self.parked.items()],
        })

    def restore(self, data: bytes | None) -> frozenset[str]:
        """Back to `data` (None: empty); returns the subscriptions it restored."""
        self.state, self.parked, self.last_slot = ShardState(self.thresholds, self.shard_id), {}, -1
        if data is not None:
            doc = orjson.loads(data)
            if doc.get("format") != "oof-shard" or doc["shard"] != self.shard_id \
                    or doc["shard_count"] != self.shard_count:
                raise ValueError("not a checkpoint of this shard")
            self.state.restore(doc["state"].encode())
            self.parked = {key: [RefRequest(*r) for r in reqs] for key, reqs in doc["parked"]}
            self.last_slot = doc["last_slot"]
        self._watched = frozenset(self.state.watched)
        return self._watched


def _position(item: tuple[int, Any]) -> int:
    return item[0]

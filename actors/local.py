"""`LocalPipeline`: the actor protocol wired in one process, without Ray.

The same assembler, planner, price workers and shard workers the actors wrap, called in
the order the ingest drives them. It is the executable statement of the protocol (unit
tests compare it with `core.engine.Engine` over many random worlds, shard and price-actor
counts and batch sizes) and the "protocol cost without Ray" line of `oof bench pipeline`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from actors.assembler import SlotAssembler
from actors.batching import Router, WatchTracker, plan_batch
from actors.price_worker import PriceWorker
from actors.shard_worker import ShardWorker
from core.models import Moment
from core.thresholds import Thresholds

__all__ = ["LocalPipeline"]


class LocalPipeline:
    def __init__(
        self,
        thresholds: Thresholds | None = None,
        *,
        shard_count: int = 3,
        price_shards: int = 2,
        tracked: Iterable[str] | None = None,
        batch_views: int = 50,
        checkpoint_every: int = 0,  # >0: snapshot + restore every actor every n batches (round trip check)
    ) -> None:
        th = thresholds or Thresholds()
        self.assembler = SlotAssembler(th, tracked)
        self.router = Router(shard_count, price_shards)
        self.tracker = WatchTracker(shard_count)
        self.prices = [PriceWorker(th, k, price_shards, shard_count) for k in range(price_shards)]
        self.shards = [ShardWorker(th, j, shard_count) for j in range(shard_count)]
        self.batch_views = batch_views
        self.checkpoint_every = checkpoint_every
        self.batches = 0
        self.upserts: list[Moment] = []

    def process(self, items: Iterable[Any]) -> None:
        for item in items:
            self.assembler.process(item)
            if self.assembler.pending_views >= self.batch_views:
                self._run_batch()

    def flush(self) -> list[Moment]:
        self.assembler.flush()
        self._run_batch()
        return self.upserts

    @property
    def final(self) -> dict[str, Moment]:
        return {m.id: m for m in self.upserts}

    def _run_batch(self) -> None:
        runs = self.assembler.take_runs()
        self.assembler.take_parsed()
        if not runs:
            return
        self.batches += 1
        checkpoint = self.checkpoint_every > 0 and self.batches % self.checkpoint_every == 0
        price_input, shard_inputs = plan_batch(self.batches, runs, router=self.router,
                                               tracked=self.assembler.tracked, tracker=self.tracker,
                                               checkpoint=checkpoint)
        outputs = [price.run(price_input) for price in self.prices]
        for j, shard in enumerate(self.shards):
            result = shard.run(shard_inputs[j], [parts[j] for parts, _ in outputs])
            self.tracker.report(j, result.batch, result.watched)
            self.upserts += result.moments
            if result.snapshot is not None:
                shard.restore(result.snapshot)
        for price, (_, meta) in zip(self.prices, outputs):
            if meta.snapshot is not None:
                price.restore(meta.snapshot)

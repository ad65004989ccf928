"""`oof:shard-jj`: owns the `ShardState` of the wallets that map to it (see `actors.shard_worker`).

A thin shell: the worker runs the batch slot by slot; the actor checks the state
generation (a restarted shard refuses batches until the ingest restored it) and reports
metrics. Its price parts arrive as the resolved results of the price actors' calls for the
same batch, so it never sees a slot before its price data.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import ray

from actors.config import setup_logging
from actors.metrics import pipeline_metrics
from actors.protocol import PricePart, ShardInput, ShardResult, StaleGeneration
from actors.shard_worker import ShardWorker
from actors.gc_policy import GcPolicy
from core.thresholds import Thresholds

__all__ = ["ShardActor"]


@ray.remote
class ShardActor:
    def __init__(self, thresholds: Thresholds, shard_id: int, shard_count: int, log_setup: Any = None) -> None:
        setup_logging(log_setup)
        self.gc = GcPolicy().start()  # long-lived state of many small objects (see actors.gc_policy)
        self.worker = ShardWorker(thresholds, shard_id, shard_count)
        self.generation: int | None = None  # None until restored: a fresh (re)start knows nothing
        self.incarnation = uuid.uuid4().hex[:8]

    def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "incarnation": self.incarnation, "generation": self.generation,
                "last_slot": self.worker.last_slot}

    def restore(self, generation: int, snapshot: bytes | None) -> frozenset[str]:
        """Back to a checkpoint (None: empty); returns the restored subscriptions."""
        watched = self.worker.restore(snapshot)
        self.generation = generation
        return watched

    def run_batch(self, generation: int, inp: ShardInput, *parts: PricePart) -> tuple[ShardResult, list[Any]]:
        """One batch; returns (the result for the ingest, the moments for the sink) as two objects
        (num_returns=2), so the moments go from here to the sink without passing through the ingest."""
        if generation != self.generation:
            raise StaleGeneration(f"shard-{self.worker.shard_id:02d}: generation {self.generation}, "
                                  f"batch wants {generation}")
        result = self.worker.run(inp, parts)
        self.gc.after(max(1, result.views))
        # The sink keeps the last state per id of a batch anyway: only that state travels.
        last = {m.id: m for m in result.moments}
        metrics = pipeline_metrics()
        metrics.stage_seconds.observe(result.busy_s, tags={"stage": "shard"})
        if result.views:
            metrics.events.inc(result.views, tags={"shard": str(self.worker.shard_id)})
        return result._replace(moments=[]), list(last.values())

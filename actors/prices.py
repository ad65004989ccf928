"""`oof:prices-k`: owns the price state of the mints that map to it (see `actors.price_worker`).

A thin shell: the worker does the per-slot protocol; the actor checks the state generation
(a restarted actor refuses batches until the ingest restored it), fans one result per shard
out as separate objects (each shard fetches only its own part) and reports metrics.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import ray

from actors.config import setup_logging
from actors.metrics import pipeline_metrics
from actors.price_worker import PriceWorker
from actors.protocol import PriceInput, StaleGeneration
from actors.gc_policy import GcPolicy
from core.thresholds import Thresholds

__all__ = ["PriceActor"]


@ray.remote
class PriceActor:
    def __init__(self, thresholds: Thresholds, index: int, price_shards: int, shard_count: int,
                 log_setup: Any = None) -> None:
        setup_logging(log_setup)
        self.worker = PriceWorker(thresholds, index, price_shards, shard_count)
        self.gc = GcPolicy().start()  # candles and tick books: long-lived state (see actors.gc_policy)
        self.generation: int | None = None  # None until restored: a fresh (re)start knows nothing
        self.incarnation = uuid.uuid4().hex[:8]

    def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "incarnation": self.incarnation, "generation": self.generation,
                "last_slot": self.worker.last_slot}

    def restore(self, generation: int, snapshot: bytes | None) -> int:
        self.worker.restore(snapshot)
        self.generation = generation
        return self.worker.last_slot

    def run_batch(self, generation: int, inp: PriceInput) -> tuple[Any, ...]:
        """One batch; returns one `PricePart` per shard and then the `PriceMeta` (num_returns = shards + 1)."""
        if generation != self.generation:
            raise StaleGeneration(f"prices-{self.worker.index}: generation {self.generation}, batch wants {generation}")
        parts, meta = self.worker.run(inp)
        self.gc.after(max(1, meta.trades))
        pipeline_metrics().stage_seconds.observe(meta.busy_s, tags={"stage": "prices"})
        return (*parts, meta)

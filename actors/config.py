"""What the supervisor builds the graph from, the actors' dashboard names and their Ray options.

CPU reservations are fractional and shared out of one budget (`cpu_budget`, default one
logical CPU) so any shard / price-actor count schedules on a 2-core box next to Serve's
replicas; they are scheduling hints, not limits. Restart policy: every actor restarts
(`max_restarts`); only idempotent calls are retried by Ray (fetch: a read; sink: upserts);
stateful batch calls are never retried by Ray — the ingest restores state and replays
instead (a blind retry on a restarted actor would run a batch on the wrong state).
"""

from __future__ import annotations

import math

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.thresholds import Thresholds

if TYPE_CHECKING:  # settings are only read by the composition root
    from core.settings import PipelineSettings

__all__ = ["PipelineConfig", "actor_name", "actor_options", "checkpoint_id", "checkpoint_kind", "setup_logging",
           "ACTOR_KINDS", "INGEST_KEY_BASE"]

PRICES_KEY_BASE = 10_000_000  # `shard_checkpoints` keys no real layout has (see `checkpoint_id`)
INGEST_KEY_BASE = 20_000_000
ACTOR_KINDS = ("supervisor", "ingest", "fetch", "prices", "shard", "sink", "analyze")
_RESTARTS = 100  # finite: a crash loop ends, a flaky node does not


@dataclass(frozen=True)
class PipelineConfig:
    """Sizing and wiring of one pipeline (settings are read once, in the composition root)."""

    shard_count: int = 4
    price_shards: int = 2
    batch_size: int = 500  # views per batch
    checkpoint_interval_s: float = 30.0
    queue_max_batches: int = 8
    thresholds: Thresholds = field(default_factory=Thresholds)
    dsn: str | None = None  # None: in-memory sink, checkpoints only in memory
    resume: bool = True  # restore the latest PostgreSQL checkpoint at start (with a dsn)
    namespace: str | None = None  # Ray namespace of the actors (None: the driver's)
    lane: str = "oof"  # actor-name prefix: `oof:shard-00` for the live pipeline, `oof-analyze:…` for jobs
    checkpoints: bool = True  # store barriers in PostgreSQL (with a dsn); a job lane starts fresh every run
    checkpoint_every_batches: int = 64  # also checkpoint this often: bounds the replay buffer
    max_batch_delay_s: float = 0.05  # a partial batch waits at most this long (live latency)
    flush_idle_s: float = 0.5  # live sources: run a held-back slot after this long without input
    cpu_budget: float = 1.0
    log_setup: Callable[[], None] | None = None  # run first in every actor process (JSON logs, level)

    @classmethod
    def from_settings(cls, pipeline: PipelineSettings, thresholds: Thresholds, **overrides: Any) -> PipelineConfig:
        return cls(shard_count=pipeline.shard_count, price_shards=pipeline.price_shards,
                   batch_size=pipeline.batch_size, checkpoint_interval_s=pipeline.checkpoint_interval_s,
                   queue_max_batches=pipeline.queue_max_batches, thresholds=thresholds, **overrides)

    @property
    def actor_count(self) -> int:
        return self.shard_count + self.price_shards + 4  # + supervisor, ingest, fetch, sink


def setup_logging(log_setup: Callable[[], None] | None) -> None:
    """What an actor's constructor calls first: the composition root's logging setup, if any."""
    if log_setup is not None:
        log_setup()


def actor_name(kind: str, index: int | None = None, lane: str = "oof") -> str:
    """`oof:ingest`, `oof:shard-03`, `oof:prices-1`: readable in the Ray dashboard."""
    if kind == "shard":
        return f"{lane}:shard-{index:02d}"
    if kind == "prices":
        return f"{lane}:prices-{index}"
    return f"{lane}:{kind}"


def cpu_share(config: PipelineConfig) -> float:
    """Each actor's reservation: the budget split evenly, rounded *down* to Ray's 0.0001 CPU grain
    (rounded to nearest, 7 actors × 0.1429 ask for more than one CPU and the last one never
    schedules beside Serve's replicas)."""
    return math.floor(config.cpu_budget / config.actor_count * 10_000) / 10_000


def actor_options(config: PipelineConfig, kind: str, index: int | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "name": actor_name(kind, index, config.lane),
        "num_cpus": cpu_share(config),
        "max_restarts": _RESTARTS,
        "max_task_retries": 3 if kind in ("fetch", "sink") else 0,
    }
    if config.namespace:
        options["namespace"] = config.namespace
    return options


def checkpoint_id(kind: str, index: int, config: PipelineConfig) -> tuple[int, int]:
    """`(shard_count, shard)` row key in `shard_checkpoints` (where 0 <= shard < shard_count).

    Shards use the real key `(shard_count, j)`. Price actors and the ingest use shard-count
    values no real layout has, which also encode the layout (N shards, M price actors), so a
    layout change never reads another layout's state: price actor k → (10_000_000 + 2048·N + M, k),
    ingest → (20_000_000 + 2048·N + M, 0).
    """
    layout = 2048 * config.shard_count + config.price_shards
    if kind == "shard":
        return config.shard_count, index
    if kind == "prices":
        return PRICES_KEY_BASE + layout, index
    return INGEST_KEY_BASE + layout, 0


def checkpoint_kind(shard_count: int, shard: int) -> tuple[str, int, int, int | None]:
    """The inverse of `checkpoint_id`: (kind, index, shard count, price actors — None for a shard row)."""
    if shard_count >= INGEST_KEY_BASE:
        layout = shard_count - INGEST_KEY_BASE
        return "ingest", shard, layout // 2048, layout % 2048
    if shard_count >= PRICES_KEY_BASE:
        layout = shard_count - PRICES_KEY_BASE
        return "prices", shard, layout // 2048, layout % 2048
    return "shard", shard, shard_count, None

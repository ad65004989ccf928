"""Pipeline metrics (`ray.util.metrics`): exported by every Ray node to Prometheus as `ray_oof_*`.

Created lazily, once per actor process, so importing this module costs nothing and the
pure modules stay Ray-free. Tag keys are fixed here; values are short strings.
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["pipeline_metrics"]

_LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
_JOB_BUCKETS = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0]
_BATCH_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]


class _Metrics:
    def __init__(self) -> None:
        from ray.util.metrics import Counter, Gauge, Histogram

        self.tx_in = Counter("oof_tx_in", "transactions received from the source", tag_keys=("source",))
        self.parse_errors = Counter("oof_parse_errors", "transactions the parser could not read",
                                    tag_keys=("source",))
        self.reconnects = Counter("oof_source_reconnects", "source connections lost", tag_keys=("source",))
        self.backfill_lag = Gauge("oof_backfill_lag_slots", "slots from the last item before a gap to the reconnect",
                                  tag_keys=("source",))
        self.queue_depth = Gauge("oof_queue_depth", "batches waiting per stage", tag_keys=("stage",))
        self.events = Counter("oof_shard_events", "wallet views applied per shard", tag_keys=("shard",))
        self.moments = Counter("oof_moments", "moment upserts written, by kind", tag_keys=("kind",))
        self.checkpoint_age = Gauge("oof_checkpoint_age_seconds", "age of the last complete checkpoint",
                                    tag_keys=("pipeline",))
        self.restarts = Counter("oof_actor_restarts", "actor restarts seen (and recovered from)", tag_keys=("actor",))
        self.stage_seconds = Histogram("oof_stage_seconds", "busy time per batch and stage", boundaries=_BATCH_BUCKETS,
                                       tag_keys=("stage",))
        self.latency = Histogram("oof_ingest_to_moment_seconds", "item arrival to batch results, per batch",
                                 boundaries=_LATENCY_BUCKETS, tag_keys=("pipeline",))
        self.external_prices = Counter("oof_external_prices", "prices polled from outside the chain (Jupiter)",
                                       tag_keys=("source", "outcome"))
        self.analyze_jobs = Counter("oof_analyze_jobs", "analyze jobs finished (done / failed) or requeued",
                                    tag_keys=("outcome",))
        self.analyze_seconds = Histogram("oof_analyze_job_seconds", "analyze job duration, claim to end",
                                         boundaries=_JOB_BUCKETS, tag_keys=("outcome",))


@cache
def pipeline_metrics() -> Any:
    """The process's metric objects (created on first use, inside a Ray worker or driver)."""
    return _Metrics()

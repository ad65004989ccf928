"""API metrics in a `CollectorRegistry` of their own, rendered at `/metrics` (Prometheus text).

One registry per `ApiMetrics` (per app, so tests can build many apps without duplicate
registration errors). It also carries, read from the process-wide default registry at
scrape time, the storage pool's `oof_db_pool_*` metrics and the `process_*`/`python_*`
collectors. Every sample is labelled `replica=<instance>`: behind Serve, each scrape of
`/metrics` is answered by *one* replica, so series from different replicas must never share
a name and label set (see docs/SERVE.md).

Business metrics (`oof_moments`, `oof_moment_severity`, `oof_moments_missed_usd`) are
gauges/histograms over the *stored* moments, recomputed from PostgreSQL when `/metrics` is
scraped, through the shared cache (`MOMENT_STATS_TTL_S`): at most one aggregate query per
TTL per replica (usually per cluster, via Redis), never on the request path of other routes.
`oof_active_users{window}` (distinct Dynamic users with a request on the current UTC day /
the last 7 UTC days, see `deployments.active_users`) is refreshed the same way
(`ACTIVE_USERS_TTL_S`), with `oof_active_users_source{source}` saying where it was counted;
from Redis, every replica reports the same cluster-wide figure: aggregate with `max`, not `sum`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from core.models import MomentKind

__all__ = [
    "ACTIVE_USERS_TTL_S",
    "ApiMetrics",
    "MomentStats",
    "MOMENT_STATS_TTL_S",
    "SEVERITY_BUCKETS",
    "moment_stats_query",
    "moment_stats_from_rows",
]

MOMENT_STATS_TTL_S = 15.0
ACTIVE_USERS_TTL_S = 30.0
_ACTIVE_USERS_SOURCES = ("redis", "memory")
SEVERITY_BUCKETS = ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1")
_SHARED_PREFIXES = ("oof_db_pool_", "process_", "python_")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# One pass over `moments`: per kind, a count, the USD sum and the cumulative severity buckets.
moment_stats_query = (
    "SELECT kind, count(*) AS n, coalesce(sum(usd_value), 0) AS usd, coalesce(sum(severity), 0) AS severity_sum, "
    + ", ".join(f"count(*) FILTER (WHERE severity <= {b}) AS le_{i}" for i, b in enumerate(SEVERITY_BUCKETS))
    + " FROM moments GROUP BY kind"
)

MomentStats = dict[str, dict[str, Any]]  # kind -> {n, usd, severity_sum, buckets: [cumulative counts]}


def moment_stats_from_rows(rows: list[Any]) -> MomentStats:
    """JSON-able per-kind stats (Decimals as strings) from `moment_stats_query` rows."""
    return {
        row["kind"]: {
            "n": int(row["n"]),
            "usd": str(row["usd"]),
            "severity_sum": str(row["severity_sum"]),
            "buckets": [int(row[f"le_{i}"]) for i in range(len(SEVERITY_BUCKETS))],
        }
        for row in rows
    }


class _SharedCollector(Collector):
    """The default registry's families whose names start with `prefixes` (pool and process metrics)."""

    def __init__(self, source: CollectorRegistry, prefixes: tuple[str, ...]) -> None:
        self._source = source
        self._prefixes = prefixes

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            if family.name.startswith(self._prefixes):
                yield family


class _MomentCollector(Collector):
    """Business metrics from the latest `MomentStats` snapshot (refreshed by the /metrics route)."""

    def __init__(self) -> None:
        self.snapshot: MomentStats | None = None
        self.ok = False

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("oof_moment_stats_up", "1 when the last business-metrics refresh succeeded")
        up.add_metric([], 1.0 if self.ok else 0.0)
        yield up
        if self.snapshot is None:
            return
        count = GaugeMetricFamily("oof_moments", "Stored moments by kind", labels=["kind"])
        usd = GaugeMetricFamily("oof_moments_missed_usd", "USD missed (sum of usd_value) by kind", labels=["kind"])
        severity = HistogramMetricFamily("oof_moment_severity", "Severity of stored moments", labels=["kind"])
        for kind in MomentKind:
            stats = self.snapshot.get(kind.value, {"n": 0, "usd": "0", "severity_sum": "0", "buckets": []})
            count.add_metric([kind.value], stats["n"])
            usd.add_metric([kind.value], float(Decimal(stats["usd"])))
            cumulative = stats["buckets"] or [0] * len(SEVERITY_BUCKETS)
            buckets = [(bound, float(n)) for bound, n in zip(SEVERITY_BUCKETS, cumulative, strict=True)]
            buckets.append(("+Inf", float(stats["n"])))
            severity.add_metric([kind.value], buckets, float(Decimal(stats["severity_sum"])))
        yield from (count, usd, severity)


class _ActiveUsersCollector(Collector):
    """`oof_active_users{window}` and `oof_active_users_source{source}` from the latest counts."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.snapshot is None:
            return
        users = GaugeMetricFamily(
            "oof_active_users",
            "Distinct Dynamic users (user tokens; services and anonymous callers excluded) with at least one "
            "API request: window=1d the current UTC day so far (resets 00:00 UTC), window=7d the current UTC "
            "day and the 6 before; one Redis HyperLogLog per UTC day (~0.8% error). While "
            "oof_active_users_source{source=\"memory\"} is 1: this replica's users only, a lower bound",
            labels=["window"],
        )
        for window in ("1d", "7d"):
            users.add_metric([window], float(self.snapshot.get(window, 0)))
        source = GaugeMetricFamily(
            "oof_active_users_source",
            "1 for where oof_active_users was counted: redis (every replica) or memory (this replica's "
            "fallback while Redis is absent or failing)",
            labels=["source"],
        )
        for name in _ACTIVE_USERS_SOURCES:
            source.add_metric([name], 1.0 if self.snapshot.get("source") == name else 0.0)
        yield from (users, source)


class _ReplicaLabelled:
    """Adds `replica=<instance>` to every sample of `registry` at render time."""

    def __init__(self, registry: CollectorRegistry, instance: str) -> None:
        self._registry = registry
        self._instance = instance

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            family.samples = [s._replace(labels={**s.labels, "replica": self._instance}) for s in family.samples]
            yield family


class ApiMetrics:
    """Every metric the API records, in one registry; `render()` is the /metrics body."""

    def __init__(self, instance: str, *, shared: CollectorRegistry = REGISTRY) -> None:
        self.instance = instance
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_latency = Histogram(
            "oof_http_request_duration_seconds", "HTTP request latency by route template and status",
            ["method", "route", "status"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.auth_failures = Counter("oof_auth_failures", "Refused credentials by reason", ["reason"], registry=r)
        self.rate_limited = Counter(
            "oof_rate_limit_rejections", "Requests refused with 429 by policy", ["policy"], registry=r
        )
        self.db_latency = Histogram(
            "oof_db_query_duration_seconds", "Database query latency (acquire included) by query",
            ["query"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.db_errors = Counter("oof_db_query_errors", "Failed database queries by query", ["query"], registry=r)
        self.external_latency = Histogram(
            "oof_external_call_duration_seconds", "Calls to services outside the API (Dynamic JWKS, Jupiter) "
            "by service and outcome", ["service", "outcome"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.cache_events = Counter(
            "oof_cache_events", "Cache lookups by layer and outcome (hit, miss, error; compute/run)",
            ["layer", "outcome"], registry=r,
        )
        self.ratelimit_backend = Gauge(
            "oof_rate_limit_memory_fallback", "1 while the rate limiter answers from process memory", registry=r
        )
        self.active_user_errors = Counter(
            "oof_active_users_redis_errors", "Failed Redis calls recording or counting active users, by op "
            "(record, count); the replica falls back to memory", ["op"], registry=r,
        )
        self.moments = _MomentCollector()
        r.register(self.moments)
        self.active_users = _ActiveUsersCollector()
        r.register(self.active_users)
        r.register(_SharedCollector(shared, _SHARED_PREFIXES))
        self._labelled = _ReplicaLabelled(r, instance)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.request_latency.labels(method, route, str(status)).observe(seconds)

    def auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()

    def rate_limit_rejection(self, policy: str) -> None:
        self.rate_limited.labels(policy).inc()

    def cache_event(self, layer: str, outcome: str) -> None:
        self.cache_events.labels(layer, outcome).inc()

    @contextmanager
    def db_timer(self, query: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception:
            self.db_errors.labels(query).inc()
            raise
        finally:
            self.db_latency.labels(query).observe(time.perf_counter() - started)

    def external_call(self, service: str, outcome: str, seconds: float) -> None:
        self.external_latency.labels(service, outcome).observe(seconds)

    @contextmanager
    def external_timer(self, service: str) -> Iterator[None]:
        """Times one outside call: outcome `ok`, or `error` when it raises."""
        started, outcome = time.perf_counter(), "error"
        try:
            yield
            outcome = "ok"
        finally:
            self.external_call(service, outcome, time.perf_counter() - started)

    def set_moment_stats(self, snapshot: MomentStats | None) -> None:
        """Latest business stats; None marks the refresh as failed (the last good snapshot is kept)."""
        self.moments.ok = snapshot is not None
        if snapshot is not None:
            self.moments.snapshot = snapshot

    def active_users_error(self, op: str) -> None:
        self.active_user_errors.labels(op).inc()

    def set_active_users(self, counts: dict[str, Any]) -> None:
        """Latest `ActiveUsers.counts()` (`{"1d": n, "7d": n, "source": "redis" | "memory"}`)."""
        self.active_users.snapshot = counts

    def render(self) -> bytes:
        return generate_latest(self._labelled)  # type: ignore[arg-type]

"""Every replica's API metrics in any replica's `/metrics` answer.

Ray Serve routes a scrape to whichever replica it picks, so a replica's own registry alone
would make every series blink in and out (Prometheus marks a series stale when a scrape
lacks it). So each replica publishes its exposition to Redis (`<prefix><instance>`, expiring
after `ttl_s`: a dead replica's series go away) every `interval_s` and on every scrape, and
an answer is the union of its own fresh text and the others' latest. Series carry the
`replica` label, so nothing collides; the business families (moments, severity, active
users), computed from shared state, come from the answering replica only. Without Redis
(or while it fails) an answer holds this replica's metrics alone — said by
`oof_metrics_replicas`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import RedisError

from streams.cancel import cancel_and_wait

__all__ = ["MetricsShare", "merge_expositions", "OWN_ONLY"]

log = structlog.get_logger("oof.metrics")
OWN_ONLY = ("oof_moments", "oof_moment_", "oof_active_users")  # cluster-wide values: the answering replica's
_ERRORS = (RedisError, OSError, TimeoutError)


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def merge_expositions(own: bytes, others: Sequence[bytes]) -> bytes:
    """One exposition with every family of `own` and the shareable samples of `others`."""
    merged: dict[str, Metric] = {}
    for number, text in enumerate([own, *others]):
        for family in text_string_to_metric_families(text.decode()):
            if number and family.name.startswith(OWN_ONLY):
                continue
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            into.samples.extend(family.samples)
    replicas = GaugeMetricFamily("oof_metrics_replicas", "API replicas whose metrics this answer holds")
    replicas.add_metric([], 1 + len(others))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([*merged.values(), replicas]))
    return generate_latest(registry)


class MetricsShare:
    def __init__(self, redis: Redis | None, instance: str, render: Callable[[], bytes], *,
                 key_prefix: str = "oof:metrics:", ttl_s: float = 60.0, interval_s: float = 15.0) -> None:
        self.redis, self.instance, self.render = redis, instance, render
        self.key_prefix, self.ttl_s, self.interval_s = key_prefix, ttl_s, interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.redis is not None and self._task is None:
            self._task = asyncio.create_task(self._publish_forever(), name="metrics-share")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self.redis is not None:
            try:
                await self.redis.delete(self.key_prefix + self.instance)
            except _ERRORS:
                pass

    async def answer(self) -> bytes:
        """This replica's metrics, fresh, merged with the other live replicas' latest."""
        own = self.render()
        others = await self._exchange(own)
        return merge_expositions(own, others)

    async def _exchange(self, own: bytes) -> list[bytes]:
        if self.redis is None:
            return []
        mine = self.key_prefix + self.instance
        try:
            await self.redis.set(mine, own, ex=max(1, int(self.ttl_s)))
            keys = [k async for k in self.redis.scan_iter(match=self.key_prefix + "*", count=100)]
            keys = [k for k in keys if (k.decode() if isinstance(k, bytes) else k) != mine]
            values: list[Any] = await self.redis.mget(keys) if keys else []
        except _ERRORS as exc:
            log.warning("metrics.share_failed", error=type(exc).__name__)
            return []
        return [v for v in values if v]

    async def _publish_forever(self) -> None:
        while True:
            await self.publish()
            await asyncio.sleep(self.interval_s)

    async def publish(self) -> None:
        assert self.redis is not None
        try:
            await self.redis.set(self.key_prefix + self.instance, self.render(), ex=max(1, int(self.ttl_s)))
        except _ERRORS as exc:
            log.warning("metrics.publish_failed", error=type(exc).__name__)

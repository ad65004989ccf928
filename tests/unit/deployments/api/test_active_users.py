"""Active users: `oof_active_users{window}` from per-UTC-day Redis HyperLogLogs, with a per-replica fallback.

The tracker alone (real Redis, a fake clock) for the day arithmetic, the one-PFADD-per-day
budget and the fallback's replay; then the app in-process (real PostgreSQL and Redis) for
who counts, two replicas sharing a namespace, and Redis on a closed port.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from deployments.active_users import KEY_TTL_S, ActiveUsers, utc_day
from deployments.auth import Principal
from deployments.auth.testing import JwksServer, RsaTestKey
from tests.unit.deployments.api.conftest import CLOSED_PORT_URL, REDIS_URL, Api, api_settings, running_api

DAY = 86_400.0
MIDNIGHT = 1_767_225_600.0  # 2026-01-01 00:00 UTC
NOON = MIDNIGHT + DAY / 2


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Switchable:
    """A Redis client whose pipelines fail while `down` (a Redis outage, then its recovery)."""

    def __init__(self, real: Redis) -> None:
        self.real, self.down = real, False

    def pipeline(self, **kw: Any) -> Any:
        if self.down:
            raise RedisConnectionError("Redis is down (test)")
        return self.real.pipeline(**kw)


def user(sub: str) -> Principal:
    return Principal("user", sub)


@pytest_asyncio.fixture(loop_scope="session")
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, socket_timeout=1)
    yield client
    await client.aclose()


def tracker(redis: Any, clock: Clock, **kw: Any) -> ActiveUsers:
    return ActiveUsers(redis, key_prefix=f"oof-test-{secrets.token_hex(4)}:active-users:", clock=clock,
                       flush_delay_s=60, **kw)


async def test_a_user_costs_one_pfadd_per_day_and_day_keys_expire_after_8_days(redis: Redis) -> None:
    clock = Clock()
    users = tracker(redis, clock)
    for principal in (user("a"), user("a"), user("b"), Principal("service", "ops"), None, user("a")):
        users.record(principal)
    assert await users.flush() and users.writes == 2
    users.record(user("a"))  # already written today: no queue, no round trip
    assert await users.flush() and users.writes == 2
    key = users.key("20260101")
    assert await redis.pfcount(key) == 2 and KEY_TTL_S - 5 <= await redis.ttl(key) <= KEY_TTL_S
    assert await users.counts() == {"1d": 2, "7d": 2, "source": "redis"}

    clock.now += DAY  # 2026-01-02: a new day key, `a` is written again once
    users.record(user("a"))
    users.record(user("a"))
    assert await users.counts() == {"1d": 1, "7d": 2, "source": "redis"} and users.writes == 3
    await redis.delete(key, users.key("20260102"))


async def test_the_7d_window_is_the_current_utc_day_and_the_six_before(redis: Redis) -> None:
    clock = Clock(MIDNIGHT)
    users = tracker(redis, clock)
    users.record(user("early"))
    clock.now += 6 * DAY + DAY - 1  # 2026-01-07 23:59:59
    users.record(user("late"))
    assert await users.counts() == {"1d": 1, "7d": 2, "source": "redis"}
    clock.now += 1  # 2026-01-08 00:00:00: 2026-01-01 leaves the window, today has nobody yet
    assert await users.counts() == {"1d": 0, "7d": 1, "source": "redis"}
    assert utc_day(clock.now) == "20260108"
    await redis.delete(users.key("20260101"), users.key("20260107"))


async def test_while_redis_is_down_the_replica_counts_in_memory_and_replays_on_recovery(redis: Redis) -> None:
    clock, errors = Clock(), []
    flaky = Switchable(redis)
    users = tracker(flaky, clock, cooldown_s=5, on_error=errors.append)
    flaky.down = True
    users.record(user("a"))
    users.record(user("b"))
    assert not await users.flush() and errors == ["record"]
    users.record(user("a"))  # held in memory: no retry per request during the cooldown
    assert await users.counts() == {"1d": 2, "7d": 2, "source": "memory"} and errors == ["record"]

    flaky.down = False
    clock.now += 6  # the cooldown is over: the next batch carries the fallback too
    users.record(user("c"))
    assert await users.counts() == {"1d": 3, "7d": 3, "source": "redis"}
    assert await redis.pfcount(users.key("20260101")) == 3
    await redis.delete(users.key("20260101"))


async def test_without_redis_the_replica_counts_in_memory() -> None:
    users = ActiveUsers(None, clock=Clock())
    for sub in ("a", "b", "a"):
        users.record(user(sub))
    assert await users.counts() == {"1d": 2, "7d": 2, "source": "memory"}
    await users.aclose()


def active_users(text: str) -> dict[str, float]:
    """`{"1d": n, "7d": n, "source": <the one at 1>, "errors": <Redis errors>}` from a /metrics body."""
    found: dict[str, Any] = {"errors": 0.0}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "oof_active_users":
                found[s.labels["window"]] = s.value
            elif s.name == "oof_active_users_source" and s.value == 1:
                found["source"] = s.labels["source"]
            elif s.name == "oof_active_users_redis_errors_total":
                found["errors"] += s.value
    return found


async def scrape(api: Api) -> dict[str, Any]:
    response = await api.get("/metrics", service=True)
    assert response.status_code == 200
    return active_users(response.text)


async def test_two_users_count_once_each_and_services_and_anonymous_callers_not_at_all(
    api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer
) -> None:
    namespace = f"oof-test-{secrets.token_hex(4)}:"
    async with running_api(api_settings(api_dsn), signing_key, jwks_server.url, namespace=namespace) as api:
        statuses = [
            (await api.get("/v1/moments", user="alice")).status_code,
            (await api.get("/v1/moments", user="alice")).status_code,
            (await api.get("/v1/wallets", user="bob")).status_code,
            (await api.get("/v1/moments", service=True)).status_code,
            (await api.get("/v1/moments")).status_code,
            (await api.get("/v1/moments", headers={"authorization": "Bearer not-a-jwt"})).status_code,
        ]
        assert statuses == [200, 200, 200, 200, 401, 401]
        metrics = await scrape(api)
        assert api.deps.active_users.writes == 2  # alice's second request cost no Redis write
        key = f"{namespace}active-users:{utc_day(time.time())}"
        assert await api.deps.redis.pfcount(key) == 2 and await api.deps.redis.ttl(key) > 7 * DAY
    assert metrics == {"1d": 2, "7d": 2, "source": "redis", "errors": 0}


async def test_replicas_sharing_redis_count_the_union(
    api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer
) -> None:
    settings, namespace = api_settings(api_dsn), f"oof-test-{secrets.token_hex(4)}:"
    async with (
        running_api(settings, signing_key, jwks_server.url, namespace=namespace) as one,
        running_api(settings, signing_key, jwks_server.url, namespace=namespace) as two,
    ):
        for api, sub in ((one, "u1"), (one, "u2"), (two, "u2"), (two, "u3")):
            assert (await api.get("/v1/moments", user=sub)).status_code == 200
        await one.deps.active_users.flush()  # what its scheduled batch does within `flush_delay_s`
        assert await scrape(two) == {"1d": 3, "7d": 3, "source": "redis", "errors": 0}
        # The other replica's scrape is answered from the shared cache: no second PFCOUNT.
        computed = one.deps.cache.stats[("compute", "run")]
        assert await scrape(one) == {"1d": 3, "7d": 3, "source": "redis", "errors": 0}
        assert one.deps.cache.stats[("compute", "run")] == computed


async def test_with_redis_unreachable_requests_succeed_and_the_replica_counts_in_memory(
    api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer
) -> None:
    settings = api_settings(api_dsn, redis={"url": CLOSED_PORT_URL, "socket_timeout_s": 0.3})
    async with running_api(settings, signing_key, jwks_server.url) as api:
        for sub in ("carol", "dave", "carol"):
            assert (await api.get("/v1/moments", user=sub)).status_code == 200
        assert (await api.get("/v1/moments", service=True)).status_code == 200
        metrics = await scrape(api)
    assert metrics["source"] == "memory" and metrics["1d"] == 2 and metrics["7d"] == 2
    assert metrics["errors"] >= 1

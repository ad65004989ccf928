"""deployments.ratelimit.limiter: policies, Redis fallback, outage logging and recovery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from core.settings import RateLimitPolicy, RateLimitSettings
from deployments.ratelimit.limiter import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeRedis:
    """Just enough of redis.asyncio.Redis for RedisStore: a script that fails, hangs or allows."""

    def __init__(self) -> None:
        self.mode = "up"
        self.calls = 0

    def register_script(self, _lua: str) -> Any:
        async def script(keys: list[str], args: list[int]) -> list[int]:
            self.calls += 1
            if self.mode == "down":
                raise RedisConnectionError("connection refused")
            if self.mode == "hang":
                await asyncio.sleep(10)
            now = 1_000_000_000
            return [1, now + args[0], now]

        return script


def settings(limit: int = 2) -> RateLimitSettings:
    return RateLimitSettings(policies={"tiny": RateLimitPolicy(limit=limit, window_s=60, key="ip")})


async def test_without_redis_the_memory_store_limits_and_nothing_is_degraded() -> None:
    limiter = RateLimiter(settings(), None, clock=FakeClock())

    decisions = [await limiter.check("tiny", "1.2.3.4") for _ in range(3)]

    assert [d.allowed for d in decisions] == [True, True, False]
    assert (limiter.backend, limiter.degraded) == ("memory", False)


async def test_unknown_policy_is_a_programming_error() -> None:
    limiter = RateLimiter(settings(), None)

    with pytest.raises(KeyError, match="nope"):
        await limiter.check("nope", "x")


def test_policy_names_that_cannot_be_headers_are_refused_at_start() -> None:
    bad = RateLimitSettings(policies={"ünï": RateLimitPolicy(limit=1, window_s=1, key="ip")})

    with pytest.raises(ValueError):
        RateLimiter(bad, None)


async def test_redis_answers_while_up() -> None:
    redis = FakeRedis()
    limiter = RateLimiter(settings(), redis, clock=FakeClock())  # type: ignore[arg-type]

    decision = await limiter.check("tiny", "x")

    assert decision.allowed and redis.calls == 1
    assert (limiter.backend, limiter.degraded) == ("redis", False)


async def test_outage_falls_back_logs_once_cools_down_and_recovers() -> None:
    # Arrange
    redis, clock = FakeRedis(), FakeClock()
    limiter = RateLimiter(settings(limit=2), redis, cooldown_s=5.0, clock=clock)  # type: ignore[arg-type]
    redis.mode = "down"

    # Act: an outage, many requests during it
    with capture_logs() as outage_logs:
        during = [await limiter.check("tiny", "x") for _ in range(4)]

    # Assert: limited by memory, Redis tried once, one log line
    assert [d.allowed for d in during] == [True, True, False, False]
    assert (limiter.backend, limiter.degraded) == ("memory", True)
    assert redis.calls == 1
    assert [e["event"] for e in outage_logs] == ["ratelimit.redis_unavailable"]
    assert outage_logs[0]["log_level"] == "warning"

    # Still down after the cooldown: one more probe, no new log line.
    clock.now += 5.0
    with capture_logs() as still_down:
        await limiter.check("tiny", "x")
    assert redis.calls == 2 and still_down == []

    # Back up: the next probe after the cooldown goes to Redis again.
    redis.mode = "up"
    clock.now += 4.9
    await limiter.check("tiny", "x")
    assert redis.calls == 2
    clock.now += 0.1
    with capture_logs() as recovery:
        decision = await limiter.check("tiny", "x")
    assert decision.allowed and redis.calls == 3
    assert (limiter.backend, limiter.degraded) == ("redis", False)
    assert [e["event"] for e in recovery] == ["ratelimit.redis_recovered"]


async def test_slow_redis_counts_as_down() -> None:
    redis = FakeRedis()
    redis.mode = "hang"
    limiter = RateLimiter(settings(), redis, timeout_s=0.01, clock=FakeClock())  # type: ignore[arg-type]

    with capture_logs():
        decision = await limiter.check("tiny", "x")

    assert decision.allowed and limiter.degraded


async def test_headers_come_from_the_decision() -> None:
    limiter = RateLimiter(settings(limit=1), None, clock=FakeClock())
    await limiter.check("tiny", "x")

    headers = limiter.headers(await limiter.check("tiny", "x"))

    assert headers == {
        "RateLimit-Policy": '"tiny";q=1;w=60',
        "RateLimit": '"tiny";r=0;t=60',
        "Retry-After": "60",
    }

"""`Cache`: local TTL LRU, then Redis, then compute — single flight per key, Redis failures absorbed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from deployments.cache import Cache
from tests.unit.deployments.api.conftest import CLOSED_PORT_URL, REDIS_URL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture(loop_scope="session")
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, socket_timeout=1)
    yield client
    await client.aclose()


def prefix() -> str:
    return f"oof-test-{secrets.token_hex(4)}:"


async def test_a_stampede_of_50_misses_computes_once(redis: Redis) -> None:
    cache = Cache(redis, key_prefix=prefix())
    calls = 0
    release = asyncio.Event()

    async def compute() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"answer": 42}

    waiters = [asyncio.create_task(cache.get_or_compute("k", 30, compute)) for _ in range(50)]
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(*waiters)
    assert calls == 1 and results == [{"answer": 42}] * 50
    assert cache.stats[("compute", "run")] == 1 and cache.stats[("local", "miss")] == 50


async def test_entries_expire_and_redis_serves_other_processes(redis: Redis) -> None:
    clock, shared = Clock(), prefix()
    one = Cache(redis, key_prefix=shared, clock=clock)
    other = Cache(redis, key_prefix=shared)
    assert await one.get_or_compute("k", 10, lambda: _value(1)) == 1
    assert await one.get_or_compute("k", 10, lambda: _value(2)) == 1  # local hit
    assert await other.get_or_compute("k", 10, lambda: _value(3)) == 1  # redis hit
    assert other.stats[("redis", "hit")] == 1 and other.stats[("compute", "run")] == 0
    clock.now += 11
    await redis.delete(f"{shared}k")
    assert await one.get_or_compute("k", 10, lambda: _value(4)) == 4  # expired locally and in Redis


async def test_a_failing_compute_fails_every_waiter_and_caches_nothing() -> None:
    cache = Cache(None)

    async def boom() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("upstream down")

    results = await asyncio.gather(*(cache.get_or_compute("k", 5, boom) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get_or_compute("k", 5, lambda: _value("fresh")) == "fresh"


async def test_redis_failures_fall_back_to_the_local_layer_and_are_counted() -> None:
    broken = Redis.from_url(CLOSED_PORT_URL, socket_connect_timeout=0.2, socket_timeout=0.2)
    events: list[tuple[str, str]] = []
    cache = Cache(broken, key_prefix=prefix(), on_event=lambda layer, outcome: events.append((layer, outcome)))
    try:
        assert await cache.get_or_compute("k", 10, lambda: _value([1, 2])) == [1, 2]
        assert await cache.get_or_compute("k", 10, lambda: _value([3])) == [1, 2]
        assert cache.redis_degraded
        assert ("redis", "error") in events and cache.stats[("compute", "run")] == 1
    finally:
        await broken.aclose()


async def test_values_must_be_json(redis: Redis) -> None:
    with pytest.raises(TypeError):
        await Cache(redis, key_prefix=prefix()).get_or_compute("k", 5, lambda: _value({1, 2}))


async def _value(value: object) -> object:
    return value

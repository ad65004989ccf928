"""The pool: bounded acquire, metrics that match reality, health probe, connection recycling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from core.errors import DatabaseError
from core.settings import DatabaseSettings
from streams.storage import PoolMetrics, create_pool, health_check


def settings(**changes: object) -> DatabaseSettings:
    return DatabaseSettings(**{"pool_min": 1, "pool_max": 2, "acquire_timeout_s": 0.2, **changes})


@pytest_asyncio.fixture(loop_scope="session")
async def small_pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings(), db_dsn)
    try:
        yield pool
    finally:
        await pool.close()


def sample(name: str, pool: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"pool": pool})


async def test_acquire_timeout_is_database_busy(small_pool: asyncpg.Pool) -> None:
    metrics = PoolMetrics(small_pool, acquire_timeout_s=0.2, name="busy")

    async with metrics.acquire(), metrics.acquire():
        with pytest.raises(DatabaseError) as caught:
            async with metrics.acquire():
                pass

    assert caught.value.detail == "database busy"
    assert caught.value.status == 503
    assert sample("oof_db_pool_acquire_wait_seconds_count", "busy") == 3
    assert (sample("oof_db_pool_acquire_wait_seconds_sum", "busy") or 0) >= 0.2


async def test_metrics_reflect_size_idle_and_in_use(small_pool: asyncpg.Pool) -> None:
    metrics = PoolMetrics(small_pool, acquire_timeout_s=1.0, name="sizes")

    async with metrics.acquire() as a, metrics.acquire() as b:
        await a.fetchval("SELECT 1")
        await b.fetchval("SELECT 1")
        busy = (metrics.size, metrics.idle, metrics.in_use, sample("oof_db_pool_idle", "sizes"))
    after = (metrics.size, metrics.idle, metrics.in_use)

    assert busy == (2, 0, 2, 0)
    assert after == (2, 2, 0)
    assert sample("oof_db_pool_size", "sizes") == 2
    assert sample("oof_db_pool_idle", "sizes") == 2
    assert metrics.max_size == 2


async def test_query_errors_inside_acquire_become_database_errors(small_pool: asyncpg.Pool) -> None:
    metrics = PoolMetrics(small_pool, acquire_timeout_s=1.0, name="errors")

    with pytest.raises(DatabaseError) as caught:
        async with metrics.acquire() as conn:
            await conn.execute("SELECT * FROM no_such_table")

    assert caught.value.detail == "database query failed"
    assert "no_such_table" in (caught.value.internal or "")
    assert metrics.in_use == 0


async def test_health_check_measures_latency(small_pool: asyncpg.Pool) -> None:
    latency = await health_check(small_pool)

    assert 0 < latency < 5


async def test_unreachable_database_is_a_database_error() -> None:
    with pytest.raises(DatabaseError) as caught:
        await create_pool(settings(acquire_timeout_s=2), "postgresql://postgres@127.0.0.1:1/postgres")

    assert caught.value.detail == "could not connect to the database"
    assert caught.value.internal


async def test_jsonb_decodes_to_python_and_decimals_encode_exactly(small_pool: asyncpg.Pool) -> None:
    async with small_pool.acquire() as conn:
        decoded = await conn.fetchval("""SELECT '{"a": [1, "x"]}'::jsonb""")
        encoded = await conn.fetchval("SELECT $1::jsonb ->> 'v'", {"v": Decimal("0.1000000000000000000001")})

    assert decoded == {"a": [1, "x"]}
    assert encoded == "0.1000000000000000000001"


async def backend_pids(pool: asyncpg.Pool, times: int, hold: float) -> list[int]:
    """The server pid behind each of `times` acquires, each held for `hold` seconds."""
    pids = []
    for _ in range(times):
        async with pool.acquire() as conn:
            pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
            await asyncio.sleep(hold)
    return pids


async def test_connections_older_than_max_lifetime_are_recycled(db_dsn: str) -> None:
    short = await create_pool(settings(pool_max=1, max_lifetime_s=0.05), db_dsn)
    long = await create_pool(settings(pool_max=1), db_dsn)
    try:
        recycled = await backend_pids(short, 3, hold=0.1)  # older than 0.05 s at each release
        kept = await backend_pids(long, 3, hold=0.0)
        assert await short.fetchval("SELECT 1") == 1  # the pool still works after retiring
    finally:
        await short.close()
        await long.close()

    assert len(set(recycled)) == 3
    assert len(set(kept)) == 1

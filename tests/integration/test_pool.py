"""The pool: bounded acquire, metrics that match reality, health probe, liveness pings, connection recycling."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from core.errors import DatabaseError
from core.settings import DatabaseSettings
from deployments.health import HealthChecker, database_check
from streams.storage import PoolMetrics, create_pool, health_check, pool_liveness
from tests.integration.conftest import ADMIN_DSN, DatabaseFactory


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


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def test_pool_pings_itself_every_health_check_interval(db_dsn: str) -> None:
    pool = await create_pool(settings(health_check_interval_s=0.05, acquire_timeout_s=2), db_dsn, name="pinged")
    try:
        live = pool_liveness(pool)
        assert live is not None and live.interval_s == 0.05 and live.pings == 0
        metrics = PoolMetrics(pool, acquire_timeout_s=1.0, name="pinged")
        assert sample("oof_db_pool_up", "pinged") == 1  # the pool opened: the database answered
        assert math.isnan(sample("oof_db_pool_ping_seconds", "pinged") or 0.0)  # no ping yet

        await eventually(lambda: live.pings >= 3)
        report = await HealthChecker([database_check(pool)]).run()
    finally:
        await pool.close()
    pings = live.pings
    await asyncio.sleep(0.2)

    assert live.ok and live.failures == 0 and live.error is None
    assert 0 < (sample("oof_db_pool_ping_seconds", "pinged") or 0) < 2
    assert metrics.liveness is live
    database = report["checks"]["database"]
    assert database["status"] == "ok"
    assert database["detail"]["liveness"]["ok"] is True and database["detail"]["liveness"]["interval_s"] == 0.05
    assert live.pings == pings  # closing the pool stopped the pings


async def test_failed_pings_are_recorded_logged_and_recover(database_factory: DatabaseFactory) -> None:
    dsn = await database_factory(migrated=False)
    name = dsn.rpartition("/")[2]
    admin = await asyncpg.connect(ADMIN_DSN)
    pool = await create_pool(settings(health_check_interval_s=0.05, acquire_timeout_s=2), dsn, name="flaky")
    live = pool_liveness(pool)
    assert live is not None
    PoolMetrics(pool, acquire_timeout_s=1.0, name="flaky")
    try:
        with capture_logs() as logs:
            # The database refuses new connections and loses its open ones: the pool is dead.
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            await eventually(lambda: live.failures >= 2)
            down = (live.ok, live.error, live.snapshot(), sample("oof_db_pool_up", "flaky"))

            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await eventually(lambda: live.ok)
    finally:
        await pool.close()
        await admin.close()

    ok, error, snapshot, up = down
    assert ok is False and up == 0
    assert error is not None and error.startswith("DatabaseError: ")
    assert snapshot["ok"] is False and snapshot["consecutive_failures"] >= 2 and snapshot["latency_ms"] is None
    failed = [e for e in logs if e["event"] == "db.ping_failed"]
    assert len(failed) >= 2 and all(e["pool"] == "flaky" and e["log_level"] == "warning" for e in failed)
    assert [e["consecutive_failures"] for e in failed[:2]] == [1, 2]
    recovered = [e for e in logs if e["event"] == "db.ping_recovered"]
    assert len(recovered) == 1 and recovered[0]["after_failures"] >= 2
    assert sample("oof_db_pool_up", "flaky") == 1 and live.failures == 0


async def test_closing_terminates_a_connection_never_given_back(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.storage import pool as pool_module

    monkeypatch.setattr(pool_module, "CLOSE_GRACE_S", 0.3)
    pool = await create_pool(settings(), db_dsn, name="abandoned")
    held = await pool.acquire()  # its holder is gone: it never comes back
    loop = asyncio.get_running_loop()
    started = loop.time()
    with capture_logs() as logs:
        await asyncio.wait_for(pool.close(), 5.0)  # asyncpg alone would wait forever
    assert 0.3 <= loop.time() - started < 3.0
    with pytest.raises(asyncpg.InterfaceError):  # its connection was terminated under it
        await held.fetchval("SELECT 1")
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["db.pool_close_timed_out"]

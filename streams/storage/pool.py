"""The asyncpg pool, configured from `DatabaseSettings`, with metrics and a health probe.

asyncpg closes idle connections itself (`max_inactive_connection_lifetime`) but has no
maximum lifetime, so the pool's `reset` hook (run on every release) retires connections
older than `max_lifetime_s`; the next acquire opens a fresh one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg
import orjson
from prometheus_client import Gauge, Histogram

from core.errors import DatabaseError
from streams.storage._db import DRIVER_ERRORS, Conn, translate_errors
from streams.storage.rows import json_text

if TYPE_CHECKING:
    from core.settings import DatabaseSettings

__all__ = ["create_pool", "register_codecs", "PoolMetrics", "health_check"]

_ACQUIRE_WAIT = Histogram(
    "oof_db_pool_acquire_wait_seconds",
    "Time spent waiting for a pooled database connection",
    ["pool"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_SIZE = Gauge("oof_db_pool_size", "Open connections in the database pool", ["pool"])
_IDLE = Gauge("oof_db_pool_idle", "Idle connections in the database pool", ["pool"])


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection that remembers when it was opened, for the max-lifetime policy."""

    opened_at: float = 0.0


async def register_codecs(conn: Conn) -> None:
    """Decode json/jsonb with orjson; encode dicts with Decimals as exact strings."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=json_text, decoder=orjson.loads, format="text")


async def create_pool(db: DatabaseSettings, dsn: str) -> asyncpg.Pool:
    """Open a pool with `pool_min` connections up front (the floor it keeps); unreachable -> DatabaseError."""
    max_lifetime = db.max_lifetime_s

    async def init(conn: _PooledConnection) -> None:
        conn.opened_at = time.monotonic()
        await register_codecs(conn)

    async def reset(conn: _PooledConnection) -> None:
        # A custom reset replaces asyncpg's default one, so run that first.
        query = conn.get_reset_query()
        if query:
            await conn.execute(query)
        if time.monotonic() - conn.opened_at >= max_lifetime:
            await _retire(conn)

    with translate_errors("could not connect to the database"):
        pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn,
            min_size=db.pool_min,
            max_size=db.pool_max,
            max_inactive_connection_lifetime=db.idle_timeout_s,
            command_timeout=db.command_timeout_s,
            timeout=db.acquire_timeout_s,  # connect timeout: opening is part of an acquire
            init=init,
            reset=reset,
            connection_class=_PooledConnection,
        )
    return pool


async def _retire(conn: _PooledConnection) -> None:
    # Closing hands the holder back to the pool empty; its next acquire reconnects.
    try:
        await conn.close(timeout=5.0)
    except DRIVER_ERRORS:
        conn.terminate()


class PoolMetrics:
    """Size, idle and in-use counts of one pool, and a timed, bounded `acquire()`.

    The gauges are computed at scrape time, so they are never stale; the histogram
    records how long each `acquire()` waited.
    """

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout_s: float, name: str = "main") -> None:
        self._pool = pool
        self._timeout = acquire_timeout_s
        self._wait = _ACQUIRE_WAIT.labels(pool=name)
        _SIZE.labels(pool=name).set_function(pool.get_size)
        _IDLE.labels(pool=name).set_function(pool.get_idle_size)

    @property
    def size(self) -> int:
        return int(self._pool.get_size())

    @property
    def idle(self) -> int:
        return int(self._pool.get_idle_size())

    @property
    def in_use(self) -> int:
        return self.size - self.idle

    @property
    def max_size(self) -> int:
        return int(self._pool.get_max_size())

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Conn]:
        """Borrow a connection; DatabaseError("database busy") if none frees up in time."""
        started = time.perf_counter()
        try:
            conn = await self._pool.acquire(timeout=self._timeout)
        except TimeoutError as exc:
            raise DatabaseError(
                "database busy", internal=f"no pooled connection within {self._timeout} s"
            ) from exc
        except DRIVER_ERRORS as exc:
            raise DatabaseError("could not connect to the database", internal=f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._wait.observe(time.perf_counter() - started)
        try:
            yield conn
        except DRIVER_ERRORS as exc:
            raise DatabaseError("database query failed", internal=f"{type(exc).__name__}: {exc}") from exc
        finally:
            await self._pool.release(conn)


async def health_check(pool: asyncpg.Pool, *, timeout: float = 5.0) -> float:
    """Seconds a `SELECT 1` round trip took (acquire included); DatabaseError when it fails."""
    started = time.perf_counter()
    with translate_errors("database is not answering"):
        async with pool.acquire(timeout=timeout) as conn:
            await conn.fetchval("SELECT 1", timeout=timeout)
    return time.perf_counter() - started

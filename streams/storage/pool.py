"""The asyncpg pool, configured from `DatabaseSettings`, with metrics and a health probe.

asyncpg closes idle connections itself (`max_inactive_connection_lifetime`) but has no
maximum lifetime, so the pool's `reset` hook (run on every release) retires connections
older than `max_lifetime_s`; the next acquire opens a fresh one.

Every pool `create_pool` opens pings the database every `health_check_interval_s` (a
`SELECT 1` through the pool, acquire included) and keeps the last outcome in its
`Liveness` (`pool_liveness(pool)`): `PoolMetrics` exports it (`oof_db_pool_up`,
`oof_db_pool_ping_seconds`), a failure is logged (`db.ping_failed`, then `db.ping_recovered`),
and the API's database health check reports it. Closing the pool stops the pings.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import structlog
from prometheus_client import Gauge, Histogram

from core.errors import DatabaseError
from streams.cancel import cancel_and_wait
from streams.storage._db import DRIVER_ERRORS, Conn, translate_errors
from streams.storage.rows import json_text

if TYPE_CHECKING:
    from core.settings import DatabaseSettings

__all__ = ["create_pool", "register_codecs", "PoolMetrics", "health_check", "Liveness", "pool_liveness"]

log = structlog.get_logger("oof.storage")
CLOSE_GRACE_S = 10.0  # how long closing waits for borrowed connections before terminating them

_ACQUIRE_WAIT = Histogram(
    "oof_db_pool_acquire_wait_seconds",
    "Time spent waiting for a pooled database connection",
    ["pool"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_SIZE = Gauge("oof_db_pool_size", "Open connections in the database pool", ["pool"])
_IDLE = Gauge("oof_db_pool_idle", "Idle connections in the database pool", ["pool"])
_UP = Gauge("oof_db_pool_up", "1 when the pool's last liveness ping answered, 0 when it failed", ["pool"])
_PING = Gauge("oof_db_pool_ping_seconds", "Round trip of the pool's last liveness ping, acquire included", ["pool"])


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection that remembers when it was opened, for the max-lifetime policy."""

    opened_at: float = 0.0


async def register_codecs(conn: Conn) -> None:
    """Decode json/jsonb with orjson; encode dicts with Decimals as exact strings."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=json_text, decoder=orjson.loads, format="text")


async def create_pool(db: DatabaseSettings, dsn: str, *, name: str = "main") -> asyncpg.Pool:
    """Open a pool with `pool_min` connections up front (the floor it keeps), pinged every
    `health_check_interval_s` (`name` labels its log events); unreachable -> DatabaseError."""
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

    # What `asyncpg.create_pool` does (its defaults for max_queries, record_class, loop),
    # with a Pool subclass that can carry the liveness pinger.
    pool = _LivePool(
        dsn,
        min_size=db.pool_min,
        max_size=db.pool_max,
        max_queries=50_000,
        max_inactive_connection_lifetime=db.idle_timeout_s,
        command_timeout=db.command_timeout_s,
        timeout=db.acquire_timeout_s,  # connect timeout: opening is part of an acquire
        init=init,
        reset=reset,
        loop=None,
        connection_class=_PooledConnection,
        record_class=asyncpg.Record,
    )
    with translate_errors("could not connect to the database"):
        await pool
    pool.start_pinging(Liveness(name, db.health_check_interval_s, timeout_s=db.acquire_timeout_s))
    return pool


@dataclass(slots=True)
class Liveness:
    """A pool's periodic liveness ping and its last outcome (`ok` starts true: the pool opened)."""

    name: str
    interval_s: float
    timeout_s: float
    ok: bool = True
    checked_at: float | None = None  # time.monotonic() of the last ping
    latency_s: float | None = None
    error: str | None = None  # client-safe: "DatabaseError: database is not answering"
    failures: int = 0  # consecutive failed pings
    pings: int = 0

    async def ping(self, pool: asyncpg.Pool) -> bool:
        """One ping, recorded; a failure is logged, never raised."""
        try:
            latency = await health_check(pool, timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - a failed ping is the finding, the loop goes on
            self.pings, self.checked_at, self.ok = self.pings + 1, time.monotonic(), False
            self.failures += 1
            self.latency_s = None
            known = isinstance(exc, DatabaseError)
            self.error = f"{type(exc).__name__}: {exc.detail}" if known else type(exc).__name__
            log.warning("db.ping_failed", pool=self.name, error=self.error, consecutive_failures=self.failures,
                        internal=exc.internal if known else repr(exc))
            return False
        if self.failures:
            log.info("db.ping_recovered", pool=self.name, after_failures=self.failures)
        self.pings, self.checked_at, self.ok = self.pings + 1, time.monotonic(), True
        self.latency_s, self.error, self.failures = latency, None, 0
        return True

    def snapshot(self) -> dict[str, Any]:
        """The last outcome, for a health check's detail."""
        age = None if self.checked_at is None else round(time.monotonic() - self.checked_at, 1)
        return {
            "ok": self.ok,
            "last_ping_age_s": age,
            "latency_ms": None if self.latency_s is None else round(self.latency_s * 1000, 2),
            "error": self.error,
            "consecutive_failures": self.failures,
            "interval_s": self.interval_s,
        }


class _LivePool(asyncpg.Pool):  # type: ignore[misc]
    """An asyncpg pool that pings itself every `liveness.interval_s` (the first ping one
    interval after opening) until it is closed."""

    liveness: Liveness | None = None
    _pinger: asyncio.Task[None] | None = None

    def start_pinging(self, liveness: Liveness) -> None:
        self.liveness = liveness
        self._pinger = asyncio.get_running_loop().create_task(self._ping_forever(liveness))

    async def _ping_forever(self, liveness: Liveness) -> None:
        while not self.is_closing():
            await asyncio.sleep(liveness.interval_s)
            await liveness.ping(self)

    async def close(self) -> None:
        pinger, self._pinger = self._pinger, None
        await cancel_and_wait(pinger)
        # asyncpg waits for every borrowed connection to come back; one that never does (a
        # holder stuck or gone) must not hang a shutdown: after the grace period, terminate.
        try:
            await asyncio.wait_for(super().close(), CLOSE_GRACE_S)
        except TimeoutError:
            log.warning("db.pool_close_timed_out", grace_s=CLOSE_GRACE_S, in_use=self.get_size() - self.get_idle_size())
            super().terminate()

    def terminate(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None
        super().terminate()


def pool_liveness(pool: asyncpg.Pool) -> Liveness | None:
    """The liveness of a pool from `create_pool` (None for a pool opened otherwise)."""
    return getattr(pool, "liveness", None)


async def _retire(conn: _PooledConnection) -> None:
    # Closing hands the holder back to the pool empty; its next acquire reconnects.
    try:
        await conn.close(timeout=5.0)
    except DRIVER_ERRORS:
        conn.terminate()


class PoolMetrics:
    """Size, idle and in-use counts of one pool, its liveness, and a timed, bounded `acquire()`.

    The gauges are computed at scrape time, so they are never stale; the histogram
    records how long each `acquire()` waited. `oof_db_pool_up` / `oof_db_pool_ping_seconds`
    are the pool's last liveness ping (a pool from `create_pool` only; NaN before the first).
    """

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout_s: float, name: str = "main") -> None:
        self._pool = pool
        self._timeout = acquire_timeout_s
        self._wait = _ACQUIRE_WAIT.labels(pool=name)
        _SIZE.labels(pool=name).set_function(pool.get_size)
        _IDLE.labels(pool=name).set_function(pool.get_idle_size)
        live = pool_liveness(pool)
        if live is not None:
            _UP.labels(pool=name).set_function(lambda: 1.0 if live.ok else 0.0)
            _PING.labels(pool=name).set_function(lambda: math.nan if live.latency_s is None else live.latency_s)

    @property
    def liveness(self) -> Liveness | None:
        return pool_liveness(self._pool)

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

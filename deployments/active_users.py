"""Active users: distinct Dynamic users who made an authenticated API request, per UTC day.

Definition (the `oof_active_users` gauge, see `deployments.metrics`):

- `window="1d"`: distinct *user* principals (Dynamic `sub`; services and anonymous callers
  are never counted) with at least one request on the **current UTC day** (00:00 UTC to
  now, so it restarts at midnight UTC; `max_over_time(...[1d])` gives whole days);
- `window="7d"`: the same over the current UTC day and the six before it.

Every request counts once its principal is known (`AuthenticateMiddleware` calls `record`),
whatever the route or status (a 403 or a 429 is still a visit; a refused token is not).

**Across replicas**: one Redis HyperLogLog per UTC day, `<namespace>active-users:<YYYYMMDD>`
(`PFADD`, `EXPIRE` 8 days), counted with `PFCOUNT` over the window's day keys, so every
replica's users are in one union (HyperLogLog: ~0.81 % standard error, exact for small sets).

**Off the request path**: `record` is synchronous and does no I/O. A per-replica cachetools
`TTLCache` of `(day, user)` pairs already written spares repeat visitors any Redis work, so a
user costs at most one `PFADD` per day per replica (more only if the cache, `seen_maxsize`
pairs, evicts it; `PFADD` is idempotent). New pairs are queued and written in one pipelined
batch by a task scheduled `flush_delay_s` later, never awaited by a request.

**Redis down or absent**: a failed batch is counted (`on_error`), Redis is skipped for
`cooldown_s`, and the pairs go to an in-process per-day set (bounded by `fallback_maxsize`).
While Redis cannot be read the gauge is counted from that set, so it is *this replica's*
users whose write failed, a lower bound, reported as `source="memory"`. When Redis answers
again, the set is replayed into the day keys (nothing is lost) and emptied.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from cachetools import TTLCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from deployments.auth import Principal
from streams.cancel import cancel_and_wait

__all__ = ["ActiveUsers", "ActiveUsersCounts", "Source", "WINDOWS", "KEY_TTL_S", "utc_day"]

Source = Literal["redis", "memory"]
ActiveUsersCounts = dict[str, Any]  # {"1d": int, "7d": int, "source": Source}; JSON-able for the shared cache
WINDOWS = {"1d": 1, "7d": 7}  # label -> UTC days, the current one included
KEY_TTL_S = 8 * 86_400  # a day key outlives the 7-day window by a day
_DAY_S = 86_400
_PFADD_CHUNK = 1_000
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)

log = structlog.get_logger("oof.active_users")


def utc_day(ts: float) -> str:
    """`YYYYMMDD` of the UTC day holding unix time `ts`."""
    return time.strftime("%Y%m%d", time.gmtime(ts))


def _days_back(today: str, n: int) -> list[str]:
    start = datetime.strptime(today, "%Y%m%d").replace(tzinfo=UTC)
    return [(start - timedelta(days=i)).strftime("%Y%m%d") for i in range(n)]


class ActiveUsers:
    """Records user principals per UTC day (Redis HyperLogLog, in-process fallback) and counts them."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        key_prefix: str = "oof:active-users:",
        seen_maxsize: int = 50_000,
        fallback_maxsize: int = 100_000,
        flush_delay_s: float = 1.0,
        redis_timeout_s: float = 0.5,
        cooldown_s: float = 5.0,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._flush_delay_s = flush_delay_s
        self._timeout_s = redis_timeout_s
        self._cooldown_s = cooldown_s
        self._on_error = on_error
        self._clock = clock
        self._fallback_maxsize = fallback_maxsize
        # (day, user) pairs already in Redis; an entry outlives its UTC day (ttl >= the rest of the day).
        self._seen: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=seen_maxsize, ttl=_DAY_S, timer=clock)
        self._pending: dict[str, set[str]] = {}  # day -> users queued for the next batch
        self._fallback: dict[str, set[str]] = {}  # day -> users whose write failed (Redis down or absent)
        self._fallback_size = 0
        self._dropped = 0
        self._day, self._day_end = "", 0.0
        self._redis_down_until = 0.0
        self._flush_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.writes = 0  # users sent with PFADD (tests, debugging)

    def key(self, day: str) -> str:
        return f"{self._prefix}{day}"

    @property
    def redis_usable(self) -> bool:
        return self._redis is not None and self._clock() >= self._redis_down_until

    def record(self, principal: Principal | None) -> None:
        """Note one request of `principal` (users only). No I/O, never raises: safe on the request path."""
        if principal is None or principal.kind != "user":
            return
        day = self._today()
        if (day, principal.id) in self._seen:
            return
        if principal.id in self._fallback.get(day, ()) and not self.redis_usable:
            return  # held in memory until Redis answers again
        queued = self._pending.setdefault(day, set())
        if principal.id in queued:
            return
        queued.add(principal.id)
        self._schedule_flush()

    async def flush(self) -> bool:
        """Write the queued users (and, once Redis answers again, the fallback) to Redis; False if it failed."""
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not self.redis_usable:  # absent, or failing recently: no round trip
                self._to_fallback(batch)
                return False
            replay = self._fallback
            merged = {day: users | replay.get(day, set()) for day, users in batch.items()}
            merged.update({day: users for day, users in replay.items() if day not in merged})
            if not merged:
                return True
            if not await self._write(merged):
                self._to_fallback(batch)
                return False
            if replay:
                log.info("active_users.fallback_replayed", users=self._fallback_size, days=len(replay))
                self._fallback, self._fallback_size = {}, 0
            for day, users in merged.items():
                for user in users:
                    self._seen[(day, user)] = True
            return True

    async def counts(self) -> ActiveUsersCounts:
        """`{"1d": n, "7d": n, "source": ...}`: from Redis (all replicas) or, failing that, this replica's fallback."""
        await self.flush()  # this replica's queued users first
        days = _days_back(self._today(), max(WINDOWS.values()))
        if self.redis_usable:
            counted = await self._redis_counts(days)
            if counted is not None:
                return {**counted, "source": "redis"}
        counts: ActiveUsersCounts = {
            label: len(set().union(*(self._fallback.get(d, set()) for d in days[:n])))
            for label, n in WINDOWS.items()
        }
        return {**counts, "source": "memory"}

    async def aclose(self) -> None:
        """Write what is queued (bounded by the Redis timeout) and stop the flush task."""
        task, self._flush_task = self._flush_task, None
        await cancel_and_wait(task)
        await self.flush()

    def _today(self) -> str:
        now = self._clock()
        if not (self._day_end - _DAY_S <= now < self._day_end):
            self._day = utc_day(now)
            self._day_end = (now // _DAY_S + 1) * _DAY_S
        return self._day

    def _schedule_flush(self) -> None:
        if self._flush_task is not None and not self._flush_task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the next flush or count writes the queue
        self._flush_task = loop.create_task(self._flush_later(), name="active-users-flush")

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._flush_delay_s)
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - a background task must not die silently
            log.exception("active_users.flush_failed")

    def _to_fallback(self, batch: dict[str, set[str]]) -> None:
        keep = set(_days_back(self._today(), max(WINDOWS.values())))
        for day in [d for d in self._fallback if d not in keep]:
            self._fallback_size -= len(self._fallback.pop(day))
        for day, users in batch.items():
            if day not in keep:
                continue
            held = self._fallback.setdefault(day, set())
            for user in users - held:
                if self._fallback_size >= self._fallback_maxsize:
                    self._dropped += 1
                    if self._dropped == 1:
                        log.warning("active_users.fallback_full", maxsize=self._fallback_maxsize)
                    continue
                held.add(user)
                self._fallback_size += 1

    async def _write(self, by_day: dict[str, set[str]]) -> bool:
        async def write(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for day, users in by_day.items():
                    ordered = sorted(users)
                    for i in range(0, len(ordered), _PFADD_CHUNK):
                        pipe.pfadd(self.key(day), *ordered[i:i + _PFADD_CHUNK])
                    pipe.expire(self.key(day), KEY_TTL_S)
                await pipe.execute()

        ok = await self._redis_call(write, what="record")
        if ok:
            self.writes += sum(map(len, by_day.values()))
        return ok

    async def _redis_counts(self, days: list[str]) -> dict[str, int] | None:
        result: dict[str, int] = {}

        async def count(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for n in WINDOWS.values():
                    pipe.pfcount(*(self.key(d) for d in days[:n]))
                answers = await pipe.execute()
            result.update({label: int(v) for label, v in zip(WINDOWS, answers, strict=True)})

        return result if await self._redis_call(count, what="count") else None

    async def _redis_call(self, op: Callable[[Redis], Awaitable[None]], *, what: str) -> bool:
        if self._redis is None:
            return False
        try:
            async with asyncio.timeout(self._timeout_s):
                await op(self._redis)
        except _REDIS_ERRORS as exc:
            if self._redis_down_until == 0.0:
                log.warning("active_users.redis_unavailable", op=what, error=type(exc).__name__, fallback="memory")
            self._redis_down_until = self._clock() + self._cooldown_s
            if self._on_error is not None:
                self._on_error(what)
            return False
        if self._redis_down_until:
            log.info("active_users.redis_recovered", op=what)
            self._redis_down_until = 0.0
        return True

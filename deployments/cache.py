"""`Cache.get_or_compute(key, ttl, compute)`: in-process TTL LRU, then Redis, then `compute()`.

Layers, nearest first:

1. **local** — a cachetools `TLRUCache` in this process (each Serve replica has its own),
   every entry expiring at its own deadline.
2. **redis** — shared by every replica, values serialized with orjson, `SET … EX ttl`.
   Optional: with no client, or while Redis fails, the local layer alone serves. A failure
   is counted (`redis`/`error`), never raised, and Redis is then skipped for `cooldown_s`
   so a dead server does not add its timeout to every request.
3. **compute** — the caller's coroutine function.

**Single flight, per process:** concurrent misses of one key share one fill task, so a
stampede of N requests computes once *in this process*; N replicas compute at most N times
(no cross-replica lock: it would put a Redis round trip on every miss, for little gain at
our TTLs). The fill runs as its own task, so a cancelled caller does not cancel it for the
others; a failing `compute` fails every waiter and caches nothing.

Values must be JSON-serializable (orjson: dicts, lists, str, int, float, bool, None).
Every layer returns the JSON round trip of the value, so a caller sees the same shape
whichever layer answered; treat it as read-only (local hits share one object).
A local entry filled from Redis expires when the Redis key does, never later.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import structlog
from cachetools import TLRUCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["Cache", "CacheEvent", "Layer", "Outcome"]

Layer = Literal["local", "redis", "compute"]
Outcome = Literal["hit", "miss", "error", "run"]
CacheEvent = Callable[[Layer, Outcome], None]

log = structlog.get_logger("oof.cache")

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    expires_at: float


class Cache:
    def __init__(
        self,
        redis: Redis | None = None,
        *,
        maxsize: int = 4096,
        key_prefix: str = "oof:cache:",
        redis_timeout_s: float = 0.25,
        cooldown_s: float = 5.0,
        on_event: CacheEvent | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._timeout_s = redis_timeout_s
        self._cooldown_s = cooldown_s
        self._on_event = on_event
        self._clock = clock
        self._local: TLRUCache[str, _Entry] = TLRUCache(
            maxsize=maxsize, ttu=lambda _key, entry, _now: entry.expires_at, timer=clock
        )
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._redis_down_until = 0.0
        self.stats: Counter[tuple[Layer, Outcome]] = Counter()

    @property
    def redis_enabled(self) -> bool:
        return self._redis is not None

    @property
    def redis_degraded(self) -> bool:
        """True while Redis is configured but being skipped after a failure."""
        return self._redis is not None and self._clock() < self._redis_down_until

    async def get_or_compute(self, key: str, ttl: float, compute: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value of `key`, computing (once per process at a time) and storing it on a miss."""
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        entry = self._local.get(key)
        if entry is not None:
            self._count("local", "hit")
            return entry.value
        self._count("local", "miss")
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(key, ttl, compute), name=f"cache-fill:{key}")
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def clear_local(self) -> None:
        """Drop this process's layer (tests; a config reload)."""
        self._local.clear()

    async def invalidate(self, key: str) -> None:
        """Forget `key` in both layers (best effort for Redis)."""
        self._local.pop(key, None)
        await self._redis_call(lambda r: r.delete(self._prefix + key))

    def _finished(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so a fill nobody awaits anymore is not reported as lost

    async def _fill(self, key: str, ttl: float, compute: Callable[[], Awaitable[Any]]) -> Any:
        found, raw, remaining_ms = await self._redis_get(key)
        if found:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self._count("redis", "error")
                log.warning("cache.redis_value_invalid", key=key)
            else:
                self._store_local(key, value, min(ttl, remaining_ms / 1000) if remaining_ms > 0 else ttl)
                return value
        data = orjson.dumps(await compute())  # a non-JSON value is a bug in the caller: it propagates
        self._count("compute", "run")
        value = orjson.loads(data)
        self._store_local(key, value, ttl)
        await self._redis_call(lambda r: r.set(self._prefix + key, data, ex=max(1, round(ttl))))
        return value

    def _store_local(self, key: str, value: Any, ttl: float) -> None:
        self._local[key] = _Entry(value, self._clock() + ttl)

    async def _redis_get(self, key: str) -> tuple[bool, bytes | None, int]:
        async def get(r: Redis) -> tuple[Any, Any]:
            async with r.pipeline(transaction=False) as pipe:
                pipe.get(self._prefix + key)
                pipe.pttl(self._prefix + key)
                raw, pttl = await pipe.execute()
            return raw, pttl

        answered, result = await self._redis_call(get)
        if not answered:
            return False, None, 0
        raw, pttl = result
        if raw is None:
            self._count("redis", "miss")
            return False, None, 0
        self._count("redis", "hit")
        return True, raw, int(pttl) if isinstance(pttl, int) else 0

    async def _redis_call(self, op: Callable[[Redis], Awaitable[Any]]) -> tuple[bool, Any]:
        if self._redis is None or self._clock() < self._redis_down_until:
            return False, None
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await op(self._redis)
        except _REDIS_ERRORS as exc:
            if self._redis_down_until == 0.0:
                log.warning("cache.redis_unavailable", error=type(exc).__name__, fallback="local")
            self._redis_down_until = self._clock() + self._cooldown_s
            self._count("redis", "error")
            return False, None
        if self._redis_down_until:
            log.info("cache.redis_recovered")
            self._redis_down_until = 0.0
        return True, result

    def _count(self, layer: Layer, outcome: Outcome) -> None:
        self.stats[(layer, outcome)] += 1
        if self._on_event is not None:
            self._on_event(layer, outcome)

"""`RateLimiter`: named policies checked in Redis, falling back to process memory.

A rate limiter must never be the reason a request fails: when Redis is not configured, errors
or is slow, the check is answered by the in-process store instead. An outage is logged once
when it starts and once when it ends; during it Redis is retried at most every `cooldown_s`,
so a dead server does not add `timeout_s` to every request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.settings import RateLimitPolicy, RateLimitSettings
from deployments.ratelimit.gcra import Decision, Rate
from deployments.ratelimit.headers import rate_limit_headers, sf_string
from deployments.ratelimit.memory_store import MemoryStore
from deployments.ratelimit.redis_store import DEFAULT_PREFIX, RedisStore

__all__ = ["RateLimiter", "Backend"]

Backend = Literal["redis", "memory"]

log = structlog.get_logger("oof.ratelimit")

# What "Redis is down" looks like: refused or reset sockets, redis-py errors, our own timeout.
_OUTAGE_ERRORS = (RedisError, OSError, TimeoutError)


class RateLimiter:
    """Checks `(policy, subject)` pairs against the configured policies."""

    def __init__(
        self,
        settings: RateLimitSettings,
        redis: Redis | None,
        *,
        key_prefix: str = DEFAULT_PREFIX,
        timeout_s: float = 0.25,
        cooldown_s: float = 5.0,
        memory: MemoryStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name in settings.policies:
            sf_string(name)  # fail at start-up, not on the first request, if a name can't be a header
        self._policies: dict[str, RateLimitPolicy] = dict(settings.policies)
        self._rates = {name: Rate(p.limit, p.window_s, p.burst) for name, p in settings.policies.items()}
        self._redis = RedisStore(redis, prefix=key_prefix) if redis is not None else None
        self._memory = memory if memory is not None else MemoryStore(clock=clock)
        self._timeout_s = timeout_s
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._degraded = False
        self._retry_redis_at = 0.0

    @property
    def backend(self) -> Backend:
        """The store answering checks right now."""
        return "redis" if self._redis is not None and not self._degraded else "memory"

    @property
    def degraded(self) -> bool:
        """True while Redis is configured but failing; Redis absent by configuration is not degraded."""
        return self._degraded

    def policy(self, policy_name: str) -> RateLimitPolicy:
        try:
            return self._policies[policy_name]
        except KeyError:
            raise KeyError(f"no rate-limit policy named {policy_name!r}") from None

    async def check(self, policy_name: str, subject: str) -> Decision:
        """Count one request by `subject` against `policy_name`; never raises for store failures."""
        self.policy(policy_name)  # unknown names are a programming error, not a store failure
        rate = self._rates[policy_name]
        if self._redis is not None and (not self._degraded or self._clock() >= self._retry_redis_at):
            try:
                async with asyncio.timeout(self._timeout_s):
                    decision = await self._redis.check(policy_name, rate, subject)
            except _OUTAGE_ERRORS as exc:
                self._enter_outage(exc)
            else:
                if self._degraded:
                    self._degraded = False
                    log.info("ratelimit.redis_recovered")
                return decision
        return await self._memory.check(policy_name, rate, subject)

    def headers(self, decision: Decision) -> dict[str, str]:
        """`RateLimit-Policy`, `RateLimit` and, when denied, `Retry-After`."""
        return rate_limit_headers(decision)

    def _enter_outage(self, exc: BaseException) -> None:
        self._retry_redis_at = self._clock() + self._cooldown_s
        if not self._degraded:
            self._degraded = True
            log.warning(
                "ratelimit.redis_unavailable",
                error=type(exc).__name__,
                fallback="memory",
                retry_in_s=self._cooldown_s,
            )

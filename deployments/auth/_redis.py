"""A Redis client behind a small circuit breaker, so auth keeps working (in-process) while Redis is down.

Give the client a short `socket_timeout` (`RedisSettings.socket_timeout_s`) and few retries:
redis-py retries connection errors with backoff by default, which a request would wait out.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["RedisGate", "RedisState"]

RedisState = Literal["ok", "unavailable", "disabled"]
T = TypeVar("T")

log = structlog.get_logger(__name__)


class RedisGate:
    """Runs Redis calls and reports failure as `None` instead of raising.

    After a failure Redis is skipped for `retry_after_s`: otherwise every request would pay a
    connect timeout while Redis is down. `state` feeds the health report.
    """

    def __init__(
        self, client: Redis | None, *, retry_after_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._failed_at: float | None = None
        self.last_error: str | None = None

    @property
    def state(self) -> RedisState:
        if self.client is None:
            return "disabled"
        return "ok" if self._failed_at is None else "unavailable"

    def usable(self) -> bool:
        if self.client is None:
            return False
        return self._failed_at is None or self._clock() - self._failed_at >= self._retry_after_s

    async def call(self, op: Callable[[Redis], Awaitable[T]], *, what: str) -> tuple[bool, T | None]:
        """`(True, result)` when Redis answered, `(False, None)` when it is disabled, failing or skipped."""
        if self.client is None or not self.usable():
            return False, None
        try:
            result = await op(self.client)
        except (RedisError, OSError) as exc:
            if self._failed_at is None:
                log.warning("auth.redis_unavailable", op=what, error=repr(exc))
            self._failed_at = self._clock()
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False, None
        if self._failed_at is not None:
            log.info("auth.redis_recovered", op=what)
        self._failed_at = None
        self.last_error = None
        return True, result

    def health(self) -> dict[str, Any]:
        return {"state": self.state, "last_error": self.last_error}

"""`Retrier`: one upstream call with a rate cap, exponential backoff + jitter and `Retry-After`.

Shared by the Solana RPC and Jupiter clients. An attempt raises `Transient` for what is
worth another try (transport errors, 429, 5xx, a node catching up); anything else
propagates at once. After the last attempt a `Transient` becomes an
`ExternalServiceError(service, status=503)`, whose message never reaches a client raw.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from core.errors import ExternalServiceError

__all__ = ["Transient", "Retrier", "retry_after_seconds"]

log = structlog.get_logger()
T = TypeVar("T")
_MAX_HINT_S = 60.0  # a server's Retry-After is honoured, but it cannot park us for more than a minute


class Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Cap(Protocol):
    async def acquire(self, n: int = 1) -> None: ...


class Retrier:
    def __init__(self, service: str, rate: _Cap, *, attempts: int, backoff_initial_s: float, backoff_max_s: float,
                 log_event: str) -> None:
        self.service, self.rate, self.attempts, self.log_event = service, rate, attempts, log_event
        self.sent = 0  # requests sent, retries included (a batch counts its sub-requests)
        self._backoff = wait_exponential_jitter(multiplier=backoff_initial_s, max=backoff_max_s,
                                                jitter=backoff_initial_s)

    async def call(self, what: str, cost: int, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` until it returns, raises something not `Transient`, or attempts run out."""
        retrying = AsyncRetrying(stop=stop_after_attempt(self.attempts), wait=self._wait,
                                 retry=retry_if_exception_type(Transient), before_sleep=self._log, reraise=True)
        try:
            async for state in retrying:
                with state:
                    await self.rate.acquire(cost)
                    self.sent += cost
                    return await attempt()
        except Transient as exc:
            raise ExternalServiceError(self.service, status=503, internal=f"{what}: gave up: {exc}") from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _wait(self, state: RetryCallState) -> float:
        delay: float = self._backoff(state)
        exc = state.outcome.exception() if state.outcome is not None else None
        hint = exc.retry_after if isinstance(exc, Transient) and exc.retry_after else 0.0
        return max(delay, min(hint, _MAX_HINT_S))

    def _log(self, state: RetryCallState) -> None:
        exc: Any = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else None
        log.info(self.log_event, attempt=state.attempt_number, delay_s=delay, reason=str(exc))


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header in seconds; None when absent or an HTTP-date (our own backoff then)."""
    try:
        return float(value) if value else None
    except ValueError:
        return None

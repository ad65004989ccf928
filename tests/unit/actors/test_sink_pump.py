"""The ingest's sink queue: bounded (a slow sink blocks `put`), ordered, failures surface."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.sink_pump import SinkPump


class _Remote:
    def __init__(self, fn: Any) -> None:
        self.remote = fn


class SlowSink:
    """Stands in for the `oof:sink` handle: `sink.write.remote(...)` is awaitable."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.gate = asyncio.Event()
        self.write = _Remote(self._write)
        self.checkpoint = _Remote(self._checkpoint)

    async def _write(self, n: int) -> int:
        await self.gate.wait()
        self.done.append(n)
        return n

    async def _checkpoint(self, n: int) -> bool:
        if n < 0:
            raise RuntimeError("database gone")
        self.done.append(n)
        return True


async def test_a_slow_sink_blocks_put_and_nothing_is_dropped_or_reordered() -> None:
    sink = SlowSink()
    pump = SinkPump(sink, max_jobs=2)
    try:
        for n in range(3):  # one in the sink, two queued
            await asyncio.wait_for(pump.put("write", n), 1)
        blocked = asyncio.ensure_future(pump.put("write", 3))
        await asyncio.sleep(0.05)
        assert not blocked.done() and pump.depth == 2  # bounded: the producer waits
        sink.gate.set()
        await asyncio.wait_for(blocked, 1)
        await pump.put("checkpoint", 4)
        await asyncio.wait_for(pump.join(), 1)
        assert sink.done == [0, 1, 2, 3, 4] and pump.persisted == [True]
    finally:
        await pump.close()


async def test_a_failing_sink_stops_the_pipeline_with_its_error() -> None:
    sink = SlowSink()
    pump = SinkPump(sink, max_jobs=2)
    try:
        await pump.put("checkpoint", -1)
        with pytest.raises(RuntimeError, match="database gone"):
            await asyncio.wait_for(pump.join(), 1)
        with pytest.raises(RuntimeError, match="database gone"):
            await pump.put("checkpoint", 5)
    finally:
        await pump.close()

"""The baseline of `oof bench live`: the live source alone, feeding a consumer that does nothing.

`SourceProbe` is a Ray actor (a worker process, like `oof:ingest`) that runs the very
source the ingest would build from the same settings (`streams.sources.build_source`:
Helius `transactionSubscribe`, same batch size) and records, per emitted batch, the wall
time `emit` was called and the signatures in it. Publish → emit is the floor any pipeline
behind this source pays: the node, the websocket, decoding, the source's own batching.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

__all__ = ["SourceProbe"]


@ray.remote(num_cpus=0)
class SourceProbe:
    def __init__(self) -> None:
        self._acks: list[tuple[float, tuple[str, ...], tuple[()]]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, solana: Any, batch_size: int) -> None:
        """Start the source in the background; returns at once (the caller waits for its subscription)."""
        from streams.sources import build_source

        source = build_source(solana, batch_size=min(batch_size, 1000))  # as the ingest's `Feed.open`
        self._task = asyncio.create_task(source.run(self._emit, self._stop))

    async def _emit(self, batch: Any) -> None:
        from streams.base import RawTx

        self._acks.append((time.time(), tuple(i.signature for i in batch if isinstance(i, RawTx)), ()))

    async def take_acks(self) -> list[tuple[float, tuple[str, ...], tuple[()]]]:
        """Emitted batches since the last call, in the shape of `SinkActor.take_acks` (no moments)."""
        acks, self._acks = self._acks, []
        return acks

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)

"""`Running`: a source's `run` in the background of a test, recording every batch it emits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from streams.base import Gap, RawTx, Source, SourceItem

__all__ = ["Running"]


class Running:
    """`async with Running(source) as run:` — `emit_delay_s` slows the consumer down,
    `emit_error` (a signature) makes it fail when that transaction arrives."""

    def __init__(self, source: Source, *, emit_delay_s: float = 0.0, emit_error: str | None = None) -> None:
        self.source, self.stop = source, asyncio.Event()
        self.batches: list[list[SourceItem]] = []
        self._delay, self._error = emit_delay_s, emit_error
        self.task: asyncio.Task[None] | None = None

    async def emit(self, batch: Sequence[SourceItem]) -> None:
        if self._error is not None and self._error in {tx.signature for tx in batch if isinstance(tx, RawTx)}:
            raise RuntimeError("consumer failed")
        self.batches.append(list(batch))
        await asyncio.sleep(self._delay)

    @property
    def txs(self) -> list[RawTx]:
        return [item for batch in self.batches for item in batch if isinstance(item, RawTx)]

    @property
    def signatures(self) -> list[str]:
        return [tx.signature for tx in self.txs]

    @property
    def gaps(self) -> list[Gap]:
        return [item for batch in self.batches for item in batch if isinstance(item, Gap)]

    async def received(self, signatures: set[str], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not signatures <= set(self.signatures):
                await asyncio.sleep(0.005)

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.source.run(self.emit, self.stop))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)

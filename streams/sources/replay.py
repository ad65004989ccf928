"""Recorded `getTransaction` results from a JSONL file, emitted in batches.

Each line is a bare result, a JSON-RPC response `{"result": …}`, or a fixture row
`{"signature", …, "result": …}`. A line that cannot be read is counted and logged, never
fatal. The source ends at the end of the file (or earlier, when `stop` is set).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import structlog

from core.errors import ParseError
from core.parse import unwrap_result
from streams.base import Emit, RawTx, SourceStats
from streams.codec import tx_signature

__all__ = ["ReplaySource", "read_line"]

log = structlog.get_logger()


def read_line(line: bytes | str) -> RawTx:
    """One recorded line as a `RawTx`; ParseError if it is not a transaction."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    result = unwrap_result(row)
    slot = result.get("slot")
    if not isinstance(slot, int) or isinstance(slot, bool):
        raise ParseError("slot is missing or not an integer")
    given = row.get("signature") if isinstance(row, dict) else None
    signature = given if isinstance(given, str) and given else tx_signature(result)
    return RawTx(signature, slot, result)


class ReplaySource:
    """Replays `path` once, `batch_size` transactions per emit."""

    def __init__(self, path: Path | str, batch_size: int = 100) -> None:
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.path = Path(path)
        self.batch_size = batch_size
        self.stats = SourceStats()

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        log.info("replay_started", path=str(self.path))
        with self.path.open("rb") as fh:
            lines = enumerate(fh, start=1)
            while not stop.is_set():
                # Reading and parsing a batch is blocking work: keep it off the event loop.
                batch = await asyncio.to_thread(self._next_batch, lines)
                if not batch:
                    break
                await emit(batch)
                self.stats.emitted += len(batch)
        log.info("replay_finished", path=str(self.path), emitted=self.stats.emitted, malformed=self.stats.malformed)

    def _next_batch(self, lines: Iterator[tuple[int, bytes]]) -> list[RawTx]:
        batch: list[RawTx] = []
        for number, line in lines:
            if not line.strip():
                continue
            try:
                batch.append(read_line(line))
                self.stats.received += 1
            except ParseError as exc:
                self.stats.malformed += 1
                log.warning("replay_line_malformed", path=str(self.path), line=number, reason=exc.detail)
            if len(batch) >= self.batch_size:
                break
        return batch

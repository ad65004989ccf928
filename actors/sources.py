"""Where the ingest's input comes from: a `SourceSpec` (picklable) and the sources it names.

- `settings`: `streams.sources.build_source` over `SolanaSettings` — a live Helius / logs
  source, or the configured recording (`ReplaySource`, file order);
- `file`: a recording replayed in slot order, as `oof replay` reads it (`SlotOrderedFile`);
- `items`: an in-memory list of inputs the engine accepts (raw results, ParsedTransactions,
  TradeEvents, or `RawTx` signatures still to fetch) handed over as one Ray object —
  benchmarks and tests — or as `parts`, Ray objects of consecutive lists read one at a time
  (analyze jobs, `actors.analyze_job`: a wallet's fetched history with the market's prices,
  slot-ordered).
For recordings, every fee payer in the file is tracked (what `oof replay` does) unless
`tracked` says otherwise; live sources track the configured and stored (linked) wallets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from core.errors import ParseError
from streams.base import Emit, RawTx, SourceStats

if TYPE_CHECKING:  # only the ingest needs the source modules themselves
    from core.settings import JupiterSettings, SolanaSettings
    from streams.sources import LivePolicy

__all__ = ["SourceSpec", "SlotOrderedFile", "ItemsSource", "fee_payers"]

log = structlog.get_logger("oof.ingest")


@dataclass(frozen=True)
class SourceSpec:
    kind: Literal["settings", "file", "items"]
    solana: SolanaSettings | None = None
    path: str | None = None
    items: Any = None  # ObjectRef of a list (kind "items")
    parts: tuple[Any, ...] = ()  # or ObjectRefs of lists, in order, each read when its turn comes (kind "items")
    tracked: tuple[str, ...] | None = None  # None: the kind's default (see the module docstring)
    live_policy: LivePolicy | None = None
    fetch_block_times: bool = False  # fill in missing block times through `oof:fetch` (live does always)
    jupiter: JupiterSettings | None = None  # live only: poll Price v3 when `enabled` (`actors.price_poll`)

    @property
    def live(self) -> bool:
        return self.kind == "settings" and self.solana is not None and self.solana.source != "replay"

    @property
    def polls_prices(self) -> bool:
        return self.live and self.jupiter is not None and self.jupiter.enabled

    @property
    def name(self) -> str:
        return self.solana.source if self.kind == "settings" and self.solana else self.kind


def fee_payers(path: Path) -> tuple[list[tuple[int, int, int, int]], set[str]]:
    """Readable lines of a recording as (slot, line, offset, size) in slot order, and their fee payers."""
    from streams.codec import tx_account_keys
    from streams.sources.replay import read_line

    entries: list[tuple[int, int, int, int]] = []
    payers: set[str] = set()
    offset = 0
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    raw = read_line(line)
                    keys = tx_account_keys(raw.result or {})
                    if keys:
                        payers.add(keys[0])
                    entries.append((raw.slot, number, offset, len(line)))
                except ParseError as exc:
                    log.warning("recording_line_unreadable", path=str(path), line=number, reason=exc.detail)
            offset += len(line)
    entries.sort()
    return entries, payers


class SlotOrderedFile:
    """A recording in slot order (ties in line order), `batch_size` transactions per emit."""

    def __init__(self, path: Path, entries: Sequence[tuple[int, int, int, int]], batch_size: int) -> None:
        self.path, self.entries, self.batch_size = path, entries, batch_size
        self.stats = SourceStats()

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        with self.path.open("rb") as fh:
            for start in range(0, len(self.entries), self.batch_size):
                if stop.is_set():
                    break
                batch = await asyncio.to_thread(self._read, fh, self.entries[start : start + self.batch_size])
                self.stats.received += len(batch)
                await emit(batch)
                self.stats.emitted += len(batch)

    @staticmethod
    def _read(fh: Any, entries: Sequence[tuple[int, int, int, int]]) -> list[RawTx]:
        from streams.sources.replay import read_line

        out = []
        for _, _, offset, size in entries:
            fh.seek(offset)
            out.append(read_line(fh.read(size)))
        return out


class ItemsSource:
    """Inputs already in memory (raw results, ParsedTransactions or TradeEvents), in order; or
    `parts` (awaitables of such lists, e.g. ObjectRefs), read one at a time, in order."""

    def __init__(self, items: Sequence[Any], batch_size: int, parts: Sequence[Any] = ()) -> None:
        self.items, self.batch_size, self.parts = items, batch_size, parts
        self.stats = SourceStats()

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        await self._emit_all(self.items, emit, stop)
        for part in self.parts:
            if stop.is_set():
                break
            await self._emit_all(await part, emit, stop)

    async def _emit_all(self, items: Sequence[Any], emit: Emit, stop: asyncio.Event) -> None:
        for start in range(0, len(items), self.batch_size):
            if stop.is_set():
                break
            batch = items[start : start + self.batch_size]
            self.stats.received += len(batch)
            await emit(batch)
            self.stats.emitted += len(batch)

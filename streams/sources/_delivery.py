"""What every live source does with a notification: dedup, fetch, emit, advance cursors.

One `Delivery` is shared by all connections of a source, so a transaction touching wallets
on two sockets, or arriving both live and through backfill, is emitted once. A signature
is remembered only after `emit` returned, and a wallet's cursor only moves past items that
were emitted: a crash or cancellation in between re-delivers instead of losing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from streams.base import Emit, RawTx, SourceStats

__all__ = [
    "Hit",
    "Cursor",
    "CursorGet",
    "CursorSet",
    "MemoryCursors",
    "SignatureLru",
    "TxFetcher",
    "Delivery",
]

log = structlog.get_logger()

CursorGet = Callable[[str], Awaitable[str | None]]
CursorSet = Callable[[str, str, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Hit:
    """One transaction a connection or a backfill saw, and the watched wallets it concerns."""

    signature: str
    slot: int
    result: Mapping[str, Any] | None
    wallets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cursor:
    signature: str
    slot: int | None  # None: loaded from storage, slot unknown


class MemoryCursors:
    """In-process cursor store: the default, and handy in tests (`get`/`set` are the callbacks)."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self.positions: dict[str, tuple[str, int | None]] = {w: (s, None) for w, s in (initial or {}).items()}

    async def get(self, wallet: str) -> str | None:
        position = self.positions.get(wallet)
        return position[0] if position else None

    async def set(self, wallet: str, signature: str, slot: int) -> None:
        self.positions[wallet] = (signature, slot)


class SignatureLru:
    """The last `size` signatures seen; older ones fall out (ingest dedups again downstream)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, signature: object) -> bool:
        return signature in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, signature: str) -> None:
        self._seen[signature] = None
        self._seen.move_to_end(signature)
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)


class TxFetcher(Protocol):
    async def get_transactions(
        self, signatures: Sequence[str], encoding: str = "json"
    ) -> Mapping[str, Mapping[str, Any] | None]: ...


class Delivery:
    """Turns hits into emitted `RawTx` batches for one source."""

    def __init__(
        self,
        rpc: TxFetcher,
        stats: SourceStats,
        *,
        cursor_get: CursorGet,
        cursor_set: CursorSet,
        batch_size: int,
        dedup_size: int,
        encoding: str,
    ) -> None:
        self.stats = stats
        self._rpc, self._encoding = rpc, encoding
        self._cursor_get, self._cursor_set = cursor_get, cursor_set
        self._batch_size = batch_size
        self._seen = SignatureLru(dedup_size)
        self._cursors: dict[str, Cursor] = {}
        self._lock = asyncio.Lock()  # connections of one source take turns, a batch at a time

    async def load_cursors(self, wallets: Sequence[str]) -> None:
        for wallet in wallets:
            if wallet not in self._cursors and (signature := await self._cursor_get(wallet)):
                self._cursors[wallet] = Cursor(signature, None)

    def cursor(self, wallet: str) -> Cursor | None:
        return self._cursors.get(wallet)

    async def deliver(self, hits: Sequence[Hit], emit: Emit, *, backfill: bool = False) -> int | None:
        """Emit what is new among `hits`; returns the newest slot handed over (None if none)."""
        newest: int | None = None
        for start in range(0, len(hits), self._batch_size):
            async with self._lock:
                slot = await self._deliver_batch(hits[start : start + self._batch_size], emit, backfill)
            newest = slot if newest is None or (slot is not None and slot > newest) else newest
        return newest

    async def _deliver_batch(self, hits: Sequence[Hit], emit: Emit, backfill: bool) -> int | None:
        fresh: dict[str, Hit] = {}
        for hit in hits:
            if hit.signature in self._seen or hit.signature in fresh:
                self.stats.duplicates += 1
            else:
                fresh[hit.signature] = hit
        missing = [sig for sig, hit in fresh.items() if hit.result is None]
        fetched = await self._rpc.get_transactions(missing, self._encoding) if missing else {}
        items = [_raw(hit, fetched.get(sig) if hit.result is None else hit.result) for sig, hit in fresh.items()]
        if items:
            await emit(items)
            self.stats.emitted += len(items)
            if backfill:
                self.stats.backfilled += len(items)
            for item in items:
                self._seen.add(item.signature)
        slots = {item.signature: item.slot for item in items}
        await self._advance([(hit, slots.get(hit.signature, hit.slot)) for hit in hits])
        return max(slots.values(), default=None)

    async def _advance(self, done: Sequence[tuple[Hit, int]]) -> None:
        # Duplicates count too: their signature was emitted before, so the wallet is past it.
        moved: dict[str, Cursor] = {}
        for hit, slot in done:
            for wallet in hit.wallets:
                current = moved.get(wallet) or self._cursors.get(wallet)
                if current is None or current.slot is None or slot >= current.slot:
                    moved[wallet] = Cursor(hit.signature, slot)
        for wallet, cursor in moved.items():
            self._cursors[wallet] = cursor
            await self._cursor_set(wallet, cursor.signature, cursor.slot or 0)


def _raw(hit: Hit, result: Mapping[str, Any] | None) -> RawTx:
    slot = result.get("slot") if result is not None else None
    if result is None:
        log.warning("source_tx_not_found", signature=hit.signature, slot=hit.slot)
    return RawTx(hit.signature, slot if isinstance(slot, int) else hit.slot, result)

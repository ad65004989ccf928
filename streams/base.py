"""The source contract: what a source can say, and how it hands it over.

A source turns one upstream (a websocket, a recording) into batches of `SourceItem`s and
awaits `emit(batch)` for each: awaiting is the backpressure, so a slow consumer slows the
source down instead of growing a queue. Everything a source can say is one closed type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable

__all__ = ["RawTx", "Gap", "SourceItem", "Emit", "Source", "SourceStats", "TokenAccount"]


@dataclass(frozen=True, slots=True)
class RawTx:
    """One transaction by signature.

    `result` is a full `getTransaction` result (`slot`, `blockTime`, `transaction`, `meta`,
    `version`), or None when only the signature is known and it still has to be fetched.
    Equality and hashing use (signature, slot) only: the same transaction, fetched or not.
    """

    signature: str
    slot: int
    result: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Gap:
    """A dropped connection (or lost notifications), reported as data.

    `last_slot`: the newest slot emitted before the break (None if nothing was emitted yet).
    `first_slot`: the cluster's slot as the new connection was opened (None if unknown).
    The backfill that follows covers `wallets` from their cursors up to now.
    """

    last_slot: int | None
    first_slot: int | None
    wallets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenAccount:
    """A watched wallet's token account that a live source follows (`streams.sources._follow`)."""

    account: str
    owner: str
    mint: str
    since_slot: int  # the slot it was first seen in: followed (backfilled) from there


SourceItem: TypeAlias = RawTx | Gap

# Batches, never single items: one await per batch keeps per-item overhead out of the hot path.
Emit: TypeAlias = Callable[[Sequence[SourceItem]], Awaitable[None]]


@dataclass(slots=True)
class SourceStats:
    """Counters a source keeps for metrics; monotonic for the life of the source."""

    received: int = 0  # transaction notifications / recorded lines read
    malformed: int = 0  # frames or lines that could not be read
    reconnects: int = 0  # connections lost, or connection attempts that failed
    dropped: int = 0  # notifications discarded locally (client queue overflow)
    backfilled: int = 0  # transactions emitted by gap backfill
    duplicates: int = 0  # items not emitted because their signature was already emitted
    emitted: int = 0  # transactions handed to `emit`


@runtime_checkable
class Source(Protocol):
    """Produces `SourceItem` batches until `stop` is set (or, for a recording, until its end)."""

    stats: SourceStats

    async def run(self, emit: Emit, stop: asyncio.Event) -> None: ...

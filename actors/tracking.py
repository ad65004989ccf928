"""Wallets tracked while the pipeline runs: linked (`POST /v1/wallets/link`) or submitted
for analysis (`POST /v1/analyze`), both stored in `tracked_wallets` by the API.

The ingest of a live source polls that table (`poll_tracked`, every
`LivePolicy.tracked_poll_s`) and hands the whole list to `IngestActor.track`, which keeps
only what it does not track or watch yet (`untracked`): the wallet joins the
`SlotAssembler`'s tracked set between two source batches and the source `watch`es it on a
new connection. Tracking only grows, and a restart re-reads the table when it opens the
source (`Feed.open`), so a restored run tracks at least what the run before it tracked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Container, Iterable, Sequence
from typing import Any

import structlog

__all__ = ["poll_tracked", "untracked"]

log = structlog.get_logger("oof.ingest")


def untracked(wallets: Iterable[str], tracked: Container[str] | None, watched: Container[str] | None) -> list[str]:
    """`wallets` (each once, in order) missing from `tracked` or `watched` (None: has everything)."""
    return [w for w in dict.fromkeys(wallets)
            if (tracked is not None and w not in tracked) or (watched is not None and w not in watched)]


async def poll_tracked(sink: Any, track: Callable[[Sequence[str]], Awaitable[int]], interval_s: float) -> None:
    """Forever: every `interval_s`, `track` what the sink says is tracked (a failure waits a round)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await track(await sink.tracked_wallets.remote())
        except Exception as exc:  # noqa: BLE001 - the database may be back next round; the stream goes on
            log.warning("tracked_poll_failed", error=f"{type(exc).__name__}: {exc}")

"""Which signatures of a wallet to fetch: the gap since its cursor (SOLANA_NOTES §3), or its
recent history for an analyze job.

Page `getSignaturesForAddress(wallet, until=cursor, before=<oldest of the previous page>)`
until a short page, then reverse to oldest-first. Fetching, dedup and advancing the cursor
over the emitted prefix are the caller's (`streams/sources/_live.py`).
"""

from __future__ import annotations

from typing import Protocol

import structlog

from streams.rpc import SignatureInfo

__all__ = ["SignaturePager", "missing_signatures", "missing_entries", "wallet_history", "PAGE_LIMIT"]

PAGE_LIMIT = 1000  # the RPC maximum
log = structlog.get_logger()


class SignaturePager(Protocol):
    async def get_signatures_for_address(
        self, address: str, before: str | None = None, until: str | None = None, limit: int = PAGE_LIMIT
    ) -> list[SignatureInfo]: ...


async def missing_signatures(rpc: SignaturePager, wallet: str, until_sig: str | None) -> list[str]:
    """Signatures of `wallet` newer than `until_sig`, oldest first."""
    return [info.signature for info in await missing_entries(rpc, wallet, until_sig)]


async def missing_entries(
    rpc: SignaturePager,
    wallet: str,
    until_sig: str | None,
    *,
    min_slot: int | None = None,
    limit: int = PAGE_LIMIT,
    max_entries: int = 100_000,
) -> list[SignatureInfo]:
    """Entries newer than `until_sig` (and at or after `min_slot`), oldest first.

    With neither bound this would walk the wallet's whole history, so one is required.
    `max_entries` bounds memory when the cursor is unknown to the node (pruned ledger):
    the newest `max_entries` are kept and the truncation is logged.
    """
    if until_sig is None and min_slot is None:
        raise ValueError("missing_entries needs until_sig or min_slot")
    newest_first: list[SignatureInfo] = []
    before: str | None = None
    while True:
        page = await rpc.get_signatures_for_address(wallet, before=before, until=until_sig, limit=limit)
        for info in page:
            # `until` is exclusive, but a node may hand back the bound itself; never re-emit it.
            if info.signature == until_sig or (min_slot is not None and info.slot < min_slot):
                return _oldest_first(newest_first)
            newest_first.append(info)
        # A short page means `until` (or the start of history) was reached; a node that
        # ignores `before` would hand back the same page forever.
        if len(page) < limit or page[-1].signature == before:
            return _oldest_first(newest_first)
        if len(newest_first) >= max_entries:
            log.warning("backfill_truncated", wallet=wallet, kept=len(newest_first), until=until_sig)
            return _oldest_first(newest_first)
        before = page[-1].signature


async def wallet_history(rpc: SignaturePager, wallet: str, limit: int) -> list[SignatureInfo]:
    """The newest `limit` entries of `wallet`'s history (fewer if it is shorter), oldest first."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    newest_first: list[SignatureInfo] = []
    before: str | None = None
    while len(newest_first) < limit:
        want = min(PAGE_LIMIT, limit - len(newest_first))
        page = await rpc.get_signatures_for_address(wallet, before=before, limit=want)
        fresh = [info for info in page if info.signature != before]
        newest_first += fresh[: limit - len(newest_first)]
        if len(page) < want or not fresh:  # the start of history (or a node ignoring `before`)
            break
        before = page[-1].signature
    return _oldest_first(newest_first)


def _oldest_first(newest_first: list[SignatureInfo]) -> list[SignatureInfo]:
    newest_first.reverse()
    return newest_first

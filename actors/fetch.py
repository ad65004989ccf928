"""`oof:fetch`: batched `getTransaction` and `getBlockTime` for the ingest, through one `RpcClient`.

Reads are idempotent, so Ray may retry them (`max_task_retries`); the client rate-caps,
batches and retries the node itself. `FetchingRpc` is what the ingest hands a live source:
the source's own RPC calls (slot, signatures for backfill) stay local, its transaction
fetches go through this actor, one call per batch of signatures.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import ray

from actors.config import setup_logging
from core.settings import SolanaSettings
from streams.rpc import RpcClient

__all__ = ["FetchActor", "FetchingRpc"]

_BLOCK_TIME_CONCURRENCY = 8


@ray.remote
class FetchActor:
    def __init__(self, solana: SolanaSettings, log_setup: Any = None) -> None:
        setup_logging(log_setup)
        self.solana = solana
        self.incarnation = uuid.uuid4().hex[:8]
        self._rpc: RpcClient | None = None
        self.fetched = self.missing = 0

    def _client(self) -> RpcClient:
        if self._rpc is None:
            self._rpc = RpcClient.from_settings(self.solana)
        return self._rpc

    async def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "incarnation": self.incarnation, "fetched": self.fetched, "missing": self.missing}

    async def transactions(self, signatures: list[str], encoding: str = "json") -> dict[str, Mapping[str, Any] | None]:
        found = await self._client().get_transactions(signatures, encoding)
        self.fetched += sum(1 for v in found.values() if v is not None)
        self.missing += sum(1 for v in found.values() if v is None)
        return found

    async def block_times(self, slots: list[int]) -> dict[int, int | None]:
        rpc, gate = self._client(), asyncio.Semaphore(_BLOCK_TIME_CONCURRENCY)

        async def one(slot: int) -> int | None:
            async with gate:
                return await rpc.get_block_time(slot)

        times = await asyncio.gather(*(one(s) for s in slots))
        return dict(zip(slots, times))

    async def close(self) -> None:
        if self._rpc is not None:
            await self._rpc.aclose()
            self._rpc = None


class FetchingRpc:
    """An `RpcClient` stand-in for a live source: transaction fetches go to `oof:fetch`."""

    def __init__(self, rpc: RpcClient, fetch: Any) -> None:
        self._rpc, self._fetch = rpc, fetch

    async def get_transactions(self, signatures: Iterable[str], encoding: str = "json") -> dict[str, Any]:
        return await self._fetch.transactions.remote(list(signatures), encoding)

    def __getattr__(self, name: str) -> Any:  # get_slot, get_signatures_for_address, aclose, ...
        return getattr(self._rpc, name)

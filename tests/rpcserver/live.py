"""Live sources against the local node, as the source tests build them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from streams.localnode import LocalRpcServer
from streams.rpc import RpcClient
from streams.sources import HeliusSource, LivePolicy, LogsSource
from streams.sources._live import LiveSource

__all__ = ["FAST", "live_source", "rpc_client"]

FAST = LivePolicy(backoff_initial_s=0.02, backoff_max_s=0.1, stable_after_s=60.0)  # quick reconnects


@asynccontextmanager
async def rpc_client(node: LocalRpcServer) -> AsyncIterator[RpcClient]:
    async with RpcClient(node.http_url, backoff_initial_s=0.01, backoff_max_s=0.05) as client:
        yield client


def live_source(kind: str, node: LocalRpcServer, rpc: RpcClient, wallets: Sequence[str], **options: Any) -> LiveSource:
    """A `helius` or `logs` source on `node` (policy `FAST` unless given)."""
    options.setdefault("policy", FAST)
    cls = HeliusSource if kind == "helius" else LogsSource
    return cls(node.ws_url, list(wallets), rpc, **options)


"""Fixtures shared across test packages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from streams.localnode import LocalRpcServer
from streams.rpc import RpcClient
from tests.rpcserver.live import rpc_client


@pytest_asyncio.fixture
async def rpc(node: LocalRpcServer) -> AsyncIterator[RpcClient]:
    """An RPC client of the module's own `node` fixture (a local JSON-RPC node)."""
    async with rpc_client(node) as client:
        yield client

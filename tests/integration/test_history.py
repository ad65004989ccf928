"""An analyze job's input: a wallet's newest history from a JSON-RPC node over a real socket,
merged across wallets into one slot-ordered list of signatures to fetch."""

from __future__ import annotations

import pytest

import streams.backfill
from actors.analyze_job import history_items
from streams.backfill import wallet_history
from streams.codec import tx_account_keys
from streams.rpc import RpcClient
from streams.localnode import LocalRpcServer
from tests.scenarios.random_world import random_world


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return random_world(7, steps=60, traders=3, tokens=2)


def _history(world, wallet):  # type: ignore[no-untyped-def]
    return [(r["transaction"]["signatures"][0], r["slot"]) for r in world.raws() if wallet in tx_account_keys(r)]


@pytest.mark.parametrize("page", [1000, 3])  # one page, and many small ones (the `before` walk)
async def test_wallet_history_is_the_newest_limit_oldest_first(world, page: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(streams.backfill, "PAGE_LIMIT", page)
    wallet = world.traders[0]
    full = _history(world, wallet)
    assert len(full) > 10
    async with LocalRpcServer(world.raws()) as node, RpcClient(node.http_url) as rpc:
        everything = await wallet_history(rpc, wallet, 10_000)
        newest = await wallet_history(rpc, wallet, 10)
        sent = node.requests["getSignaturesForAddress"]
    assert [(e.signature, e.slot) for e in everything] == full
    assert [(e.signature, e.slot) for e in newest] == full[-10:]
    if page == 3:
        assert sent >= len(full) // 3 + 10 // 3  # really paged, and stopped at the limit


async def test_wallet_history_of_an_unknown_wallet_is_empty(world) -> None:  # type: ignore[no-untyped-def]
    async with LocalRpcServer(world.raws()) as node, RpcClient(node.http_url) as rpc:
        assert await wallet_history(rpc, "11111111111111111111111111111112", 5) == []
        with pytest.raises(ValueError, match="at least 1"):
            await wallet_history(rpc, world.traders[0], 0)


async def test_history_items_merge_wallets_once_each_in_slot_order(world) -> None:  # type: ignore[no-untyped-def]
    a, b = world.traders[:2]
    async with LocalRpcServer(world.raws()) as node, RpcClient(node.http_url) as rpc:
        histories = {w: await wallet_history(rpc, w, 10_000) for w in (a, b)}
    items = history_items(histories)
    sigs = [i.signature for i in items]
    assert len(sigs) == len(set(sigs)) == len({e.signature for es in histories.values() for e in es})
    assert [i.slot for i in items] == sorted(i.slot for i in items)
    assert all(i.result is None for i in items)  # fetched later, by the lane's `oof:fetch`

"""`LiveSource.watch`: wallets added to a running source, over a real socket (streams.localnode).

Each transaction of tests/fixtures/mainnet used here concerns exactly one of `W0..W3`, so
what a source emits shows which of its subscriptions saw it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio

from streams.codec import tx_account_keys, tx_signature
from streams.rpc import RpcClient
from streams.sources import MemoryCursors
from streams.sources._live import LiveSource
from tests.fixtures import MAINNET
from streams.localnode import LocalRpcServer, load_results
from tests.rpcserver.live import live_source
from tests.rpcserver.running import Running

RESULTS = load_results(MAINNET / "transactions.jsonl")
W0, W1, W2, W3 = WALLETS = (
    "5z4giZ7YjS7LMGYfPjCUA8qUUxNSFm3Ru3xGtKCziqb6",
    "DtMUkCoeyzs35B6EpQQxPyyog6TRwXxV1W1Acp8nWBNa",
    "3xTPAZxmpwd8GrNEKApaTw6VH4jqJ31WFXUvQzgwhR7c",
    "FQT9SSwEZ6UUQxsmTzgt5JzjrS4M5zm13M1QiYF8TEo6",
)
MINE = {w: [r for r in RESULTS if w in tx_account_keys(r)] for w in WALLETS}
OTHERS = [r for r in RESULTS if not set(tx_account_keys(r)) & set(WALLETS)]


@pytest_asyncio.fixture
async def node() -> AsyncIterator[LocalRpcServer]:
    async with LocalRpcServer(OTHERS) as server:
        yield server


def make(kind: str, node: LocalRpcServer, rpc: RpcClient, wallets: Sequence[str], **options: Any) -> LiveSource:
    return live_source(kind, node, rpc, wallets, **options)


def subscriptions(kind: str, wallets: int, sockets: int) -> tuple[int, str]:
    return (sockets, "transaction") if kind == "helius" else (wallets, "logs")


async def publish(node: LocalRpcServer, *results: dict[str, Any]) -> list[str]:
    return [await node.publish(result) for result in results]


async def closed(node: LocalRpcServer) -> None:
    async with asyncio.timeout(5):
        while node.subscriptions():
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("kind", ["helius", "logs"])
async def test_a_wallet_watched_while_running_goes_live_and_the_others_keep_going(
    kind: str, node: LocalRpcServer, rpc: RpcClient
) -> None:
    source = make(kind, node, rpc, [W0, W1])
    async with Running(source) as run:
        await node.wait_for_subscriptions(*subscriptions(kind, 2, 1))
        first = await publish(node, MINE[W0][0], MINE[W2][0])  # W2 is not watched yet
        await run.received({first[0]})

        added = source.watch([W0, W2, W3, W2])
        await node.wait_for_subscriptions(*subscriptions(kind, 4, 2))
        later = await publish(node, MINE[W2][1], MINE[W3][0], MINE[W1][0], MINE[W0][1])
        await run.received(set(later))
        await asyncio.sleep(0.05)  # room for anything that should not come

    assert added == (W2, W3) and source.watch([W3]) == ()
    assert source.wallets == WALLETS and source.groups == [(W0, W1), (W2, W3)]
    assert sorted(run.signatures) == sorted([first[0], *later])  # each once; W2's earlier tx stays history
    assert node.ws_connects == 2 and source.stats.reconnects == 0 and source.stats.duplicates == 0
    assert not source._loops and run.task is not None and run.task.result() is None  # stop ended every loop
    await closed(node)


async def test_added_wallets_respect_max_per_socket(node: LocalRpcServer, rpc: RpcClient) -> None:
    source = make("helius", node, rpc, [W0], max_per_socket=2)
    async with Running(source) as run:
        await node.wait_for_subscriptions(1, "transaction")
        source.watch([W1, W2, W3])
        await node.wait_for_subscriptions(3, "transaction")
        published = await publish(node, *(MINE[w][0] for w in WALLETS))
        await run.received(set(published))

    assert source.groups == [(W0,), (W1, W2), (W3,)] and node.ws_connects == 3
    assert sorted(run.signatures) == sorted(published)


async def test_a_transaction_seen_by_an_old_and_a_new_socket_is_emitted_once(
    node: LocalRpcServer, rpc: RpcClient
) -> None:
    shared = MINE[W0][0]
    other = next(k for k in tx_account_keys(shared) if k != W0)
    source = make("helius", node, rpc, [W0])
    async with Running(source) as run:
        await node.wait_for_subscriptions(1, "transaction")
        source.watch([other])
        await node.wait_for_subscriptions(2, "transaction")
        [signature] = await publish(node, shared)
        await run.received({signature})
        await asyncio.sleep(0.05)

    assert run.signatures == [signature] and source.stats.duplicates == 1


@pytest.mark.parametrize("kind", ["helius", "logs"])
async def test_an_added_wallet_with_a_stored_cursor_is_backfilled_from_it(
    kind: str, node: LocalRpcServer, rpc: RpcClient
) -> None:
    seen, missed = MINE[W2][0], MINE[W2][1]
    cursors = MemoryCursors({W2: tx_signature(seen)})
    source = make(kind, node, rpc, [W0], cursor_get=cursors.get, cursor_set=cursors.set)
    async with Running(source) as run:
        await node.wait_for_subscriptions(1, "transaction" if kind == "helius" else "logs")
        await publish(node, seen, missed)  # nobody watches W2 yet

        source.watch([W2])
        await run.received({tx_signature(missed)})
        await asyncio.sleep(0.05)

    assert run.signatures == [tx_signature(missed)]  # from the cursor on, not before it
    assert source.stats.backfilled == 1 and cursors.positions[W2][0] == tx_signature(missed)


async def test_wallets_watched_before_run_start_with_the_others(node: LocalRpcServer, rpc: RpcClient) -> None:
    source = make("logs", node, rpc, [W0])
    source.watch([W1])
    async with Running(source) as run:
        await node.wait_for_subscriptions(2, "logs")
        published = await publish(node, MINE[W1][0])
        await run.received(set(published))

    assert source.groups == [(W0,), (W1,)] and run.signatures == published


async def test_a_failing_consumer_in_an_added_group_ends_run_and_every_loop(
    node: LocalRpcServer, rpc: RpcClient
) -> None:
    bad = tx_signature(MINE[W1][0])
    source = make("helius", node, rpc, [W0])
    run = Running(source, emit_error=bad)
    task = asyncio.create_task(source.run(run.emit, run.stop))
    await node.wait_for_subscriptions(1, "transaction")
    source.watch([W1])
    await node.wait_for_subscriptions(2, "transaction")
    await publish(node, MINE[W1][0])

    with pytest.raises(RuntimeError, match="consumer failed"):
        await asyncio.wait_for(task, 5)
    assert not source._loops and source.watch([W2]) == (W2,)  # a stopped source only records it
    await closed(node)

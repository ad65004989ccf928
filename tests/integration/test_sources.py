"""The sources against a local Solana JSON-RPC node (streams.localnode) serving mainnet recordings.

Watched: four fee payers of tests/fixtures/mainnet/transactions.jsonl. The node starts with
the rest of the recording (plus one of theirs, as history that must not be emitted);
tests publish the others one slot at a time, cut connections, and compare what the
source emitted with what was published: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.errors import ExternalServiceError
from streams.codec import tx_account_keys, tx_signature
from streams.rpc import RpcClient
from streams.sources import HeliusSource, LivePolicy, LogsSource, ReplaySource
from streams.sources._live import LiveSource
from tests.fixtures import MAINNET
from streams.localnode import LocalRpcServer, load_results
from tests.rpcserver.running import Running

RESULTS = load_results(MAINNET / "transactions.jsonl")
WALLETS = [
    "5z4giZ7YjS7LMGYfPjCUA8qUUxNSFm3Ru3xGtKCziqb6",
    "DtMUkCoeyzs35B6EpQQxPyyog6TRwXxV1W1Acp8nWBNa",
    "3xTPAZxmpwd8GrNEKApaTw6VH4jqJ31WFXUvQzgwhR7c",
    "FQT9SSwEZ6UUQxsmTzgt5JzjrS4M5zm13M1QiYF8TEo6",
]
MINE = [r for r in RESULTS if set(tx_account_keys(r)) & set(WALLETS)]
OTHERS = [r for r in RESULTS if r not in MINE]
UNRELATED = OTHERS[0]  # held back: published, never emitted
LIVE = MINE[1:]  # MINE[0] is history from before the source started
FAST = LivePolicy(backoff_initial_s=0.02, backoff_max_s=0.1, stable_after_s=60.0)


@pytest_asyncio.fixture
async def node() -> AsyncIterator[LocalRpcServer]:
    async with LocalRpcServer([*OTHERS[1:], MINE[0]]) as server:
        yield server


def make(kind: str, node: LocalRpcServer, rpc: RpcClient, **options: Any) -> LiveSource:
    options.setdefault("policy", FAST)
    if kind == "helius":
        return HeliusSource(node.ws_url, WALLETS, rpc, **options)
    return LogsSource(node.ws_url, WALLETS, rpc, **options)


def subscriptions_for(kind: str) -> tuple[int, str]:
    return (1, "transaction") if kind == "helius" else (len(WALLETS), "logs")


@pytest.mark.parametrize("kind", ["helius", "logs"])
async def test_live_source_emits_what_is_published_for_its_wallets(
    kind: str, node: LocalRpcServer, rpc: RpcClient
) -> None:
    # Arrange
    async with Running(make(kind, node, rpc)) as run:
        await node.wait_for_subscriptions(*subscriptions_for(kind))

        # Act
        published = [await node.publish(result) for result in LIVE[:3]]
        await node.publish(UNRELATED)
        await run.received(set(published))
        await asyncio.sleep(0.05)  # room for anything that should not come

    # Assert
    assert [tx.signature for tx in run.txs] == published
    for tx in run.txs:
        stored = node.ledger.get(tx.signature)
        assert stored is not None and tx.slot == stored.slot and tx.result is not None
        assert (tx.result["transaction"], tx.result["meta"]) == (stored.result["transaction"], stored.result["meta"])
    assert run.gaps == [] and run.source.stats.reconnects == 0
    if kind == "logs":  # signature-only notifications were fetched, in batches
        assert 1 <= node.requests["getTransaction"] <= 3


@pytest.mark.parametrize("kind", ["helius", "logs"])
async def test_forced_disconnect_loses_nothing_and_duplicates_nothing(
    kind: str, node: LocalRpcServer, rpc: RpcClient
) -> None:
    count, sub_kind = subscriptions_for(kind)
    async with Running(make(kind, node, rpc)) as run:
        await node.wait_for_subscriptions(count, sub_kind)
        before_drop = [await node.publish(result) for result in LIVE[:2]]
        await run.received(set(before_drop))
        last_slot = max(tx.slot for tx in run.txs)

        # The network goes away; the chain does not.
        node.accepting = False
        assert await node.drop_connections() >= 1
        while_down = [await node.publish(result) for result in LIVE[2:6]]
        await asyncio.sleep(0.15)  # a few refused reconnects
        # Back up, with a slow HTTP side: what is published now arrives live *and* via backfill.
        node.http_delay_s = 0.05
        node.accepting = True
        await node.wait_for_subscriptions(count, sub_kind)
        overlap = [await node.publish(result) for result in LIVE[6:8]]
        published = before_drop + while_down + overlap
        await run.received(set(published))
        node.http_delay_s = 0.0
        after = [await node.publish(LIVE[8])]
        await run.received(set(after))
        await asyncio.sleep(0.05)

    signatures = [tx.signature for tx in run.txs]
    assert sorted(signatures) == sorted(published + after)  # nothing lost, nothing twice
    assert tx_signature(MINE[0]) not in signatures  # history before the start stays history
    [gap] = run.gaps
    assert gap.last_slot == last_slot and gap.first_slot is not None and gap.first_slot >= last_slot
    assert set(WALLETS) <= set(gap.wallets) <= set(WALLETS) | set(run.source.followed)  # + accounts followed by then
    stats = run.source.stats
    assert stats.reconnects >= 2 and stats.backfilled >= len(while_down) and stats.duplicates >= 1
    assert all(tx.result is not None for tx in run.txs)


@pytest.mark.parametrize("kind", ["helius", "logs"])
async def test_a_gap_over_several_wallets_is_backfilled_in_slot_order(
    kind: str, node: LocalRpcServer, rpc: RpcClient
) -> None:
    count, sub_kind = subscriptions_for(kind)
    async with Running(make(kind, node, rpc)) as run:
        await node.wait_for_subscriptions(count, sub_kind)
        seen = [await node.publish(LIVE[i]) for i in (0, 2, 4, 6)]  # one of each wallet: every one has a cursor
        await run.received(set(seen))
        node.accepting = False
        await node.drop_connections()
        # While down, the last watched wallet trades first and the first one last: wallet by
        # wallet, the backfill would hand the newest slot over first.
        missed = [await node.publish(LIVE[i]) for i in (7, 5, 3, 1)]
        node.accepting = True
        await node.wait_for_subscriptions(count, sub_kind)
        await run.received(set(missed))
    after_gap = run.txs[len(seen):]
    assert [tx.signature for tx in after_gap] == missed  # each once, oldest slot first
    assert [tx.slot for tx in after_gap] == sorted(tx.slot for tx in after_gap)


@pytest.mark.parametrize("kind", ["helius", "logs"])
async def test_a_restart_backfills_every_connection_as_one_slot_ordered_run(
    kind: str, node: LocalRpcServer, rpc: RpcClient
) -> None:
    # Before the restart: each wallet was seen once (its cursor); then, while nothing ran, the
    # two connections' wallets traded in turns (groups: WALLETS[:2] and WALLETS[2:]).
    cursors = {w: await node.publish(LIVE[i])
               for w, i in zip(WALLETS, (0, 2, 4, 6), strict=True)}
    missed = [await node.publish(LIVE[i]) for i in (1, 5, 3, 7)]  # A, B, A, B

    async def cursor_get(wallet: str) -> str | None:
        return cursors[wallet]

    source = make(kind, node, rpc, max_per_socket=2, cursor_get=cursor_get)
    assert len(source.groups) == 2
    async with Running(source) as run:
        await run.received(set(missed))
        await asyncio.sleep(0.05)
    assert [tx.signature for tx in run.txs] == missed  # one run in slot order, each once
    assert run.gaps == []


async def test_helius_counts_malformed_frames_and_keeps_the_connection(node: LocalRpcServer, rpc: RpcClient) -> None:
    async with Running(make("helius", node, rpc)) as run:
        await node.wait_for_subscriptions(1)
        await node.send_raw("{not json")
        await node.send_raw('{"jsonrpc":"2.0","method":"transactionNotification","params":{"result":{"slot":1}}}')
        await node.send_raw('{"jsonrpc":"2.0","method":"accountNotification","params":{"result":{},"subscription":1}}')
        signature = await node.publish(LIVE[0])
        await run.received({signature})

    stats = run.source.stats
    assert (stats.malformed, stats.reconnects, node.ws_connects) == (2, 0, 1)


async def test_logs_malformed_frame_costs_a_reconnect_not_data(node: LocalRpcServer, rpc: RpcClient) -> None:
    # solana-py's client dies on any frame it cannot read; the source reconnects and backfills.
    async with Running(make("logs", node, rpc)) as run:
        await node.wait_for_subscriptions(len(WALLETS), "logs")
        first = await node.publish(LIVE[0])
        await run.received({first})
        await node.send_raw("{not json")
        rest = [await node.publish(result) for result in LIVE[1:4]]
        await run.received(set(rest))

    assert sorted(tx.signature for tx in run.txs) == sorted([first, *rest])
    assert run.source.stats.malformed == 1 and run.source.stats.reconnects >= 1


async def test_logs_client_overflow_is_a_gap_that_gets_backfilled(node: LocalRpcServer, rpc: RpcClient) -> None:
    # A tiny client queue and a slow consumer: notifications are dropped, then recovered.
    policy = LivePolicy(backoff_initial_s=0.02, backoff_max_s=0.1, queue_size=1, batch_size=1)
    async with Running(make("logs", node, rpc, policy=policy), emit_delay_s=0.05) as run:
        await node.wait_for_subscriptions(len(WALLETS), "logs")
        published = [await node.publish(result) for result in LIVE]
        await run.received(set(published), timeout=10)

    assert sorted(tx.signature for tx in run.txs) == sorted(published)
    assert run.source.stats.dropped >= 1 and run.gaps and run.source.stats.reconnects == 0


async def test_helius_spreads_wallets_over_sockets_and_emits_a_shared_tx_once(
    node: LocalRpcServer, rpc: RpcClient
) -> None:
    shared = LIVE[0]
    both = list(tx_account_keys(shared)[:2])  # fee payer and another account of the same tx
    source = HeliusSource(node.ws_url, both, rpc, policy=FAST, max_per_socket=1)
    async with Running(source) as run:
        await node.wait_for_subscriptions(2, "transaction")
        signature = await node.publish(shared)
        await run.received({signature})
        await asyncio.sleep(0.05)

    assert [tx.signature for tx in run.txs] == [signature]
    assert node.ws_connects == 2 and source.stats.duplicates == 1


async def test_watchdog_recycles_a_silent_socket(node: LocalRpcServer, rpc: RpcClient) -> None:
    policy = LivePolicy(backoff_initial_s=0.01, backoff_max_s=0.02, watchdog_s=0.1)
    async with Running(make("helius", node, rpc, policy=policy)) as run:
        await asyncio.sleep(0.35)

    assert run.source.stats.reconnects >= 1 and node.requests["slotSubscribe"] >= 2


async def test_replay_source_reads_the_recording_in_batches() -> None:
    run = Running(ReplaySource(MAINNET / "transactions.jsonl", batch_size=10))
    await run.source.run(run.emit, run.stop)

    assert [len(batch) for batch in run.batches] == [10, 10, 10, 8]
    assert [tx.signature for tx in run.txs] == [tx_signature(r) for r in RESULTS]
    assert [tx.result for tx in run.txs] == RESULTS
    assert run.source.stats.malformed == 0


async def test_replay_source_counts_bad_lines_and_goes_on(tmp_path: Path) -> None:
    result = RESULTS[0]
    lines = [
        json.dumps(result),  # bare
        json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}),  # JSON-RPC response
        json.dumps({"signature": tx_signature(result), "result": result}),  # fixture row
        "",
        "{not json",
        json.dumps({"result": None}),
        json.dumps({"transaction": result["transaction"], "meta": result["meta"]}),  # no slot
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    run = Running(ReplaySource(path, batch_size=2))

    await run.source.run(run.emit, run.stop)

    assert [tx.signature for tx in run.txs] == [tx_signature(result)] * 3
    assert (run.source.stats.received, run.source.stats.malformed) == (3, 3)


async def test_rpc_client_batches_retries_and_types_errors(node: LocalRpcServer, rpc: RpcClient) -> None:
    known = [tx_signature(r) for r in OTHERS[1:13]]
    unknown = "1" * 64

    got = await rpc.get_transactions([*known, unknown, known[0]])

    assert list(got) == [*known, unknown] and got[unknown] is None
    assert all(got[sig] == node.ledger.get(sig).result for sig in known)  # type: ignore[union-attr]
    assert node.requests["getTransaction"] == 13 and rpc.requests == 13  # sub-requests, not posts

    node.fail_http(2, status=429, retry_after="0")
    assert await rpc.get_slot() == node.ledger.head
    node.fail_http(1, status=503)
    assert len(await rpc.get_transactions(known[:2])) == 2

    node.fail_http(1, status=400)
    with pytest.raises(ExternalServiceError):
        await rpc.get_slot()
    with pytest.raises(ExternalServiceError) as refused:
        await rpc.get_signatures_for_address(WALLETS[0], limit=5000)
    assert "Invalid limit" in (refused.value.internal or "")
    node.fail_http(4, status=500)  # every attempt the client makes
    with pytest.raises(ExternalServiceError) as gave_up:
        await rpc.get_slot()
    assert gave_up.value.status == 503

    stored = node.ledger.get(known[0])
    assert stored is not None
    assert await rpc.get_block_time(stored.slot) == stored.result["blockTime"]
    assert await rpc.get_block_time(5) is None

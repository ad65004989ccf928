"""A wallet tracked while `oof run` runs (as `POST /v1/wallets/link` or `/v1/analyze` store it)
is watched and tracked live, without a restart: its transactions and moments reach PostgreSQL
exactly as the in-process engine finds them."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from solders.pubkey import Pubkey

from actors import PipelineConfig, SourceSpec
from core.settings import SolanaSettings
from deployments.pipeline import start
from streams.codec import tx_account_keys
from streams.sources import LivePolicy
from streams.storage import WalletSource, track_wallets
from tests.e2e.test_pipeline import _count, _database, _expected, _moments_equal, _stored, _until
from streams.localnode import LocalRpcServer
from tests.scenarios.gifts import GiftStory
from tests.scenarios.random_world import random_world

pytestmark = pytest.mark.usefixtures("ray_cluster")


def _live_pipeline(node: LocalRpcServer, dsn: str, wallet: str, **policy: Any) -> Any:
    """The pipeline on a Helius source of `node` watching `wallet`, quick to reconnect and flush."""
    solana = SolanaSettings(source="helius", rpc_http_url=node.http_url, rpc_ws_url=node.ws_url, wallets=[wallet])
    live = LivePolicy(backoff_initial_s=0.02, backoff_max_s=0.1, batch_size=20, **policy)
    config = PipelineConfig(shard_count=2, price_shards=2, batch_size=20, dsn=dsn, resume=False,
                            flush_idle_s=0.3, namespace=f"oof-live-{uuid.uuid4().hex[:8]}")
    return start(config, SourceSpec("settings", solana=solana, live_policy=live))


async def test_wallets_tracked_while_running_are_watched_and_tracked_live(database_factory: Any) -> None:
    dsn = await _database(database_factory)
    world = random_world(44, steps=60)
    raws = world.raws()
    payers = sorted({tx_account_keys(r)[0] for r in raws})  # traders and market makers: every tx is theirs
    configured = str(Pubkey.new_unique())  # watched from the start; in no transaction
    expected = _expected(raws, {configured, *payers})
    async with LocalRpcServer() as node:
        pipeline = _live_pipeline(node, dsn, configured, tracked_poll_s=0.2)
        try:
            await node.wait_for_subscriptions(1, "transaction", timeout=60)
            conn = await asyncpg.connect(dsn)
            try:
                await track_wallets(conn, payers, WalletSource.ANALYZE)
            finally:
                await conn.close()
            await node.wait_for_subscriptions(2, "transaction", timeout=10)  # a new socket; the first stays
            for raw in raws:
                await node.publish(raw, slot=raw["slot"])
            await _until(lambda: _count(dsn, "transactions"), len(raws), timeout=30)
            await _until(lambda: _moments_equal(dsn, expected), True, timeout=30)
            status = (await pipeline.supervisor.status.remote())["ingest"]
            await pipeline.supervisor.stop.remote()
            summary = await pipeline.supervisor.wait.remote()
        finally:
            pipeline.shutdown()
    _, moments, signatures = await _stored(dsn)
    assert signatures == {r["transaction"]["signatures"][0] for r in raws}
    assert moments == expected and len(moments) > 10
    assert status["wallets_tracked"] == summary["wallets_tracked"] == len(payers)
    assert summary["duplicates"] == 0 and summary["gaps"] == 0 and node.ws_connects == 2


async def test_a_transfer_into_a_tracked_wallets_token_account_reaches_the_pipeline(database_factory: Any) -> None:
    # Arrange: A is tracked; B's transfers into A's token account never name A.
    dsn = await _database(database_factory)
    story = GiftStory()
    async with LocalRpcServer() as node:
        await node.publish(story.b_buy.result)
        pipeline = _live_pipeline(node, dsn, story.a, follow_delay_s=0.05)
        try:
            await node.wait_for_subscriptions(1, "transaction", timeout=60)

            # Act
            published = [await node.publish(tx.result) for tx in (story.buy, story.gift)]
            await node.wait_for_subscriptions(2, "transaction", timeout=10)  # A's token accounts, same socket
            published.append(await node.publish(story.gift_later.result))
            await _until(lambda: _count(dsn, "transactions"), 3, timeout=30)
            await pipeline.supervisor.stop.remote()
            summary = await pipeline.supervisor.wait.remote()
        finally:
            pipeline.shutdown()

    # Assert: all three stored (the gifts reach the pipeline only through A's token account),
    # and A's token accounts saved for the next start
    conn = await asyncpg.connect(dsn)
    try:
        stored = {r["signature"] for r in await conn.fetch("SELECT signature FROM transactions")}
        followed = {r["account"]: r["owner"] for r in await conn.fetch("SELECT account, owner FROM followed_token_accounts")}
    finally:
        await conn.close()
    assert stored == set(published)
    assert followed.get(story.account) == story.a and set(followed.values()) == {story.a}
    assert summary["duplicates"] == 0 and node.ws_connects == 1

"""Jupiter Price v3 through `oof run`'s live pipeline: the poller's prices of the watched mints join the
stream as ticks, so a position nobody else trades still gets its drawdown."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from actors import PipelineConfig, SourceSpec
from core.external_prices import ORACLE_WALLET
from core.models import MomentKind
from core.settings import JupiterSettings, SolanaSettings
from deployments.pipeline import start
from streams.sources import LivePolicy
from tests.e2e.test_pipeline import _database, _stored
from streams.localnode import LocalRpcServer
from streams.localnode.jupiter import LocalJupiter
from tests.scenarios import World

pytestmark = pytest.mark.usefixtures("ray_cluster")


async def test_jupiter_prices_reach_the_shards_as_ticks_of_the_live_stream(database_factory: Any) -> None:
    dsn = await _database(database_factory)
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    buy = w.buy(alice, tok, 100, "1")  # the only TOK swap there will ever be
    clock = w.market[2]  # its failed transactions move event time on, a minute apart
    beats = []
    for _ in range(40):
        w.wait(60)
        beats.append(w.heartbeat())
    async with LocalRpcServer() as node, LocalJupiter({tok: "0.5"}) as jup:
        solana = SolanaSettings(source="helius", rpc_http_url=node.http_url, rpc_ws_url=node.ws_url,
                                wallets=[alice, clock])
        jupiter = JupiterSettings(enabled=True, base_url=jup.base_url, price_poll_s=0.2)  # type: ignore[arg-type]
        policy = LivePolicy(backoff_initial_s=0.02, backoff_max_s=0.1, batch_size=20)
        config = PipelineConfig(shard_count=2, price_shards=2, batch_size=20, dsn=dsn, resume=False,
                                flush_idle_s=0.3, namespace=f"oof-prices-{uuid.uuid4().hex[:8]}")
        pipeline = start(config, SourceSpec("settings", solana=solana, live_policy=policy, jupiter=jupiter))
        try:
            await node.wait_for_subscriptions(1, "transaction", timeout=60)
            await node.publish(buy.result, slot=buy.slot)
            bhd = await _published_until_found(node, beats, dsn)
            status = (await pipeline.supervisor.status.remote())["ingest"]
            await pipeline.supervisor.stop.remote()
            await pipeline.supervisor.wait.remote()
        finally:
            pipeline.shutdown()
    assert (bhd["wallet"], bhd["mint"], bhd["status"]) == (alice, tok, "open")
    assert (Decimal(bhd["pct"]), Decimal(bhd["usd_value"])) == (Decimal("-0.5"), Decimal(50))
    assert Decimal(bhd["explain"]["inputs"]["p_low"]) == Decimal("0.5")
    assert status["jupiter"]["offered"] >= 1 and status["jupiter"]["poll_errors"] == 0
    assert any(tok in seen.ids for seen in jup.requests)  # asked only once a shard watched it
    counts, _, signatures = await _stored(dsn)
    assert all(not s.startswith("jupiter-price-v3:") for s in signatures)  # prices are ticks, not transactions
    conn = await asyncpg.connect(dsn)
    try:
        lows = await conn.fetch("SELECT low FROM price_candles WHERE mint = $1", tok)
        assert ORACLE_WALLET not in {r["wallet"] for r in await conn.fetch("SELECT wallet FROM trade_events")}
    finally:
        await conn.close()
    assert Decimal("0.5") in {r["low"] for r in lows}


async def _published_until_found(node: LocalRpcServer, beats: list[Any], dsn: str) -> dict[str, Any]:
    """Publish one heartbeat after another until a BHD is stored; returns it."""
    deadline = time.monotonic() + 60
    for beat in beats:
        await node.publish(beat.result, slot=beat.slot)
        await asyncio.sleep(0.4)
        found = [m for m in (await _stored(dsn))[1].values() if m["kind"] == MomentKind.BHD.value]
        if found:
            return found[0]
        assert time.monotonic() < deadline
    raise AssertionError("no BHD after every heartbeat")

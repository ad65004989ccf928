"""Analyze jobs with the market's prices of the time: a wallet bought a token (paying SOL) and only
the market — historical OHLCV from a local Birdeye endpoint — later crashed it. Without history
prices the job finds nothing (its only swap has no SOL/USD to be priced by, and nothing trades
the token after it); with them it stores the drawdown and the rug, exactly the moments the
in-process engine finds over the same history with the same prices merged in, every run.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import ray

from actors import PipelineConfig
from actors.analyze_market import MarketPrices, market_items
from core.codec import moment_to_dict
from core.engine import Engine
from core.mints import SOL_MINT, USDC_MINT
from core.settings import AnalyzeSettings, HistoryPricesSettings, Settings, SolanaSettings
from core.thresholds import Thresholds
from deployments.pipeline import start_analyze_runner
from streams.localnode import LocalRpcServer
from streams.localnode.birdeye import LocalBirdeye
from streams.storage import Job, JobStatus
from tests.e2e.test_analyze import _finished, _stored_moments, _submit
from tests.scenarios import World

pytestmark = pytest.mark.usefixtures("ray_cluster")

DAY = 86_400


def _wait(w: World, seconds: int) -> None:
    """Time and slots move together, 0.4 s a slot, as on the chain (the market's prices are placed by them)."""
    w.wait(seconds)
    w.slot += seconds * 5 // 2


def _world() -> tuple[World, str, str, int]:
    w = World()
    wallet, tok = w.wallet("bag-holder"), w.token("CRASH", decimals=6)
    w.deposit(wallet, USDC_MINT, 50)
    _wait(w, DAY)
    bought_at = w.buy(wallet, tok, 1_000, "0.01", quote=SOL_MINT).block_time  # 10 SOL: $1,500 at the market's SOL
    _wait(w, 2 * DAY)
    w.transfer(wallet, w.market[0], USDC_MINT, 5)
    return w, wallet, tok, bought_at


def _candles(tok: str, bought_at: int) -> dict[str, list[tuple[int, str, str, str, str]]]:
    """SOL at $150 throughout; CRASH at $1.50 until an hour after the buy, then $0.04 for good."""
    span = range((bought_at - 3 * DAY) // 900 * 900, bought_at + 12 * DAY, 900)
    return {SOL_MINT: [(u, "150", "150.5", "149.5", "150") for u in span],
            tok: [(u, *(("1.5", "1.52", "1.48", "1.5") if u < bought_at + 3_600 else ("0.04",) * 4)) for u in span]}


async def _job(settings: Settings, node: LocalRpcServer, dsn: str, wallets: list[str], runs: int = 1) -> list[Job]:
    solana = SolanaSettings(rpc_http_url=node.http_url, rpc_ws_url=node.ws_url)
    config = PipelineConfig(batch_size=50, dsn=dsn, namespace=f"oof-analyze-{uuid.uuid4().hex[:8]}")
    runner = start_analyze_runner(settings, config, dsn, solana)
    try:
        jobs = [await _finished(dsn, await _submit(dsn, wallets)) for _ in range(runs)]
        while (await runner.status.remote())["job"] is not None:
            await asyncio.sleep(0.1)
        return jobs
    finally:
        await runner.stop.remote()
        ray.kill(runner, no_restart=True)


def _engine(items: list[Any], wallet: str) -> dict[str, dict[str, Any]]:
    engine = Engine(tracked=[wallet])
    return {m.id: moment_to_dict(m) for m in [*engine.process_batch(items), *engine.flush()]}


async def test_a_crash_only_the_market_saw_is_found_with_history_prices_and_not_without(database_factory: Any) -> None:
    dsn = await database_factory(migrated=True)
    w, wallet, tok, bought_at = _world()
    history = w.raws()
    analyze = AnalyzeSettings(poll_s=0.2, heartbeat_s=0.5)
    async with LocalRpcServer(history) as node, LocalBirdeye(_candles(tok, bought_at), api_key="bird-key") as bird:
        birdeye = HistoryPricesSettings(provider="birdeye", base_url=bird.base_url,
                                        api_key="bird-key")  # type: ignore[arg-type]
        (without,) = await _job(Settings(analyze=analyze), node, dsn, [wallet])
        stored_without = await _stored_moments(dsn, wallet)
        with_prices, again = await _job(Settings(analyze=analyze, history_prices=birdeye), node, dsn, [wallet], runs=2)
        stored = await _stored_moments(dsn, wallet)
        items, market = await market_items(history, [wallet], MarketPrices(birdeye, Thresholds()))
        asked = {(r.address, r.type, r.api_key, r.chain) for r in bird.requests}

    # Without history prices: the wallet's own swap is all the job sees, and it shows nothing.
    assert without.status is JobStatus.DONE, without.error
    assert without.progress["market"] == {"provider": "none", "status": "off"}
    assert _engine(history, wallet) == stored_without == {} and without.progress["moments"] == {}

    # With them: a drawdown and a rug, exactly the in-process engine's over the same merged items.
    expected = _engine(items, wallet)
    assert {m["kind"] for m in expected.values()} == {"BHD", "RUG"}
    assert all(m["status"] == "final" for m in expected.values())  # event time ran on past their windows
    assert with_prices.status is JobStatus.DONE, with_prices.error
    assert stored == expected
    progress = with_prices.progress
    assert progress["phase"] == "done" and progress["market"] == market
    assert market["status"] == "priced" and market["mints"] == market["mints_priced"] == 2
    assert market["candles"] > 2 * 8 * 96 and progress["prices_processed"] == market["prices"] > 0
    assert progress["processed"] == progress["fetched"] == progress["transactions"] == len(history)
    assert progress["moments"] == {"BHD": 1, "RUG": 1}
    assert asked == {(SOL_MINT, "15m", "bird-key", "solana"), (tok, "15m", "bird-key", "solana")}

    # The same job again: the same moments (deterministic placement), upserted, not duplicated.
    assert again.status is JobStatus.DONE and again.progress["moments"] == progress["moments"]
    assert again.progress["market"] == market

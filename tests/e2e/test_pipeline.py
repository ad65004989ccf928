"""The streaming pipeline on the shared Ray instance: exact, crash-safe, idempotent, gap-proof.

Each test builds its own actor graph in its own Ray namespace (so names never collide) and
compares with the in-process `core.engine.Engine` over the same transactions: the actor
pipeline must find the same moments — same ids, same final states — whatever the shard
and price-actor counts, crashes, reruns or websocket drops.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import ray

from actors import PipelineConfig, SourceSpec, actor_name
from core.codec import moment_to_dict
from core.engine import Engine
from core.settings import SolanaSettings
from deployments.commands.replay import replay, replay_actors
from deployments.pipeline import start
from streams.codec import tx_account_keys
from streams.sources import LivePolicy
from streams.localnode import LocalRpcServer
from tests.scenarios.random_world import random_world

pytestmark = pytest.mark.usefixtures("ray_cluster")
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"


def _namespace() -> str:
    return f"oof-pipeline-{uuid.uuid4().hex[:8]}"


def _final(moments: Any) -> dict[str, dict[str, Any]]:
    return {m.id: moment_to_dict(m) for m in moments}


def _engine(raws: list[dict[str, Any]], tracked: Any) -> tuple[dict[str, dict[str, Any]], int]:
    """The in-process engine's final moments and its price tick count."""
    engine = Engine(tracked=tracked)
    moments = _final([*engine.process_batch(raws), *engine.flush()])
    return moments, engine.stats.ticks


def _expected(raws: list[dict[str, Any]], tracked: Any) -> dict[str, dict[str, Any]]:
    return _engine(raws, tracked)[0]


async def _database(factory: Any) -> str:
    return await factory(migrated=True)


async def _stored(dsn: str) -> tuple[dict[str, int], dict[str, dict[str, Any]], set[str]]:
    """Row counts, the stored moments (as `moment_to_dict`), the stored signatures."""
    from streams.storage import list_moments

    conn = await asyncpg.connect(dsn)
    try:
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608 - fixed table names
                  for t in ("transactions", "trade_events", "moments", "price_candles", "shard_checkpoints")}
        moments = _final(await list_moments(conn, limit=10_000))
        signatures = {r["signature"] for r in await conn.fetch("SELECT signature FROM transactions")}
    finally:
        await conn.close()
    return counts, moments, signatures


async def _candles(dsn: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(
            "SELECT mint, minute, open, high, low, close, volume, ticks, first_slot, last_slot FROM price_candles"
            " ORDER BY mint, minute")]
    finally:
        await conn.close()


def test_replay_through_the_actors_writes_exactly_the_in_process_moments(tmp_path: Path) -> None:
    world = random_world(44, steps=120, traders=5, tokens=4)
    src = tmp_path / "world.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in world.raws()))
    engine_out, actors_out = tmp_path / "engine.jsonl", tmp_path / "actors.jsonl"

    assert replay(src, engine_out, err=io.StringIO()) == 0
    err = io.StringIO()
    assert replay_actors(src, actors_out, shards=3, price_shards=2, batch_size=25, err=err) == 0

    assert actors_out.read_bytes() == engine_out.read_bytes()  # every moment, final state, same order
    assert len(engine_out.read_bytes().splitlines()) > 10
    assert "through 3 shard and 2 price actors" in err.getvalue() and "stages (busy s)" in err.getvalue()


def test_killing_a_shard_and_a_price_actor_mid_stream_changes_nothing() -> None:
    world = random_world(5, steps=600, traders=8, tokens=6)
    raws = world.raws()
    expected = _expected(raws, world.traders)
    namespace = _namespace()
    config = PipelineConfig(shard_count=3, price_shards=2, batch_size=10, queue_max_batches=4,
                            checkpoint_every_batches=8, namespace=namespace)
    pipeline = start(config, SourceSpec("items", items=ray.put(raws), tracked=tuple(world.traders)))
    try:
        names = [actor_name(k) for k in ("supervisor", "ingest", "fetch", "sink")]
        names += [actor_name("shard", j) for j in range(3)] + [actor_name("prices", k) for k in range(2)]
        assert all(ray.get_actor(name, namespace=namespace) for name in names)
        assert names[4:] == ["oof:shard-00", "oof:shard-01", "oof:shard-02", "oof:prices-0", "oof:prices-1"]
        deadline = time.monotonic() + 60
        while pipeline.status()["ingest"].get("batches", 0) < 20:  # mid-stream: ~90 batches in all
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for name in ("oof:shard-01", "oof:prices-0"):
            ray.kill(ray.get_actor(name, namespace=namespace), no_restart=False)
        summary = pipeline.wait(timeout=120)
        got = _final(pipeline.moments())
    finally:
        pipeline.shutdown()
    assert summary["recoveries"] >= 1
    assert summary["restarts"]["oof:shard-01"] >= 1 and summary["restarts"]["oof:prices-0"] >= 1
    assert got == expected and len(got) > 50


async def test_a_recording_replayed_twice_upserts_and_never_duplicates(database_factory: Any, tmp_path: Path) -> None:
    dsn = await _database(database_factory)
    world = random_world(13, steps=80)
    src = tmp_path / "rec.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in world.raws()))
    payers = {tx_account_keys(r)[0] for r in world.raws()}
    solana = SolanaSettings(source="replay", replay_file=src)
    config = PipelineConfig(shard_count=2, price_shards=2, batch_size=15, checkpoint_every_batches=2, dsn=dsn,
                            resume=False, namespace=_namespace())
    pipeline = start(config, SourceSpec("settings", solana=solana))
    try:
        first = await pipeline.supervisor.wait.remote()
        counts, moments, signatures = await _stored(dsn)
        candles = await _candles(dsn)
        pipeline.rerun(SourceSpec("settings", solana=solana))  # from scratch: every row is written again
        second = await pipeline.supervisor.wait.remote()
        again = await _stored(dsn)
        candles_again = await _candles(dsn)
    finally:
        pipeline.shutdown()
    assert first["tx_in"] == second["tx_in"] == len(world.txs)
    assert counts["transactions"] == len(world.txs) and counts["moments"] == len(moments) > 0
    assert counts["shard_checkpoints"] == 1 + 2 + 2  # ingest, price actors, shards: one barrier set
    assert again[0] == counts and again[1] == moments and again[2] == signatures
    expected, ticks = _engine(world.raws(), payers)
    assert moments == expected
    assert candles_again == candles and sum(c[7] for c in candles) == ticks > 0  # every tick counted once


async def test_a_dropped_helius_socket_is_backfilled_without_loss_or_duplicates(database_factory: Any) -> None:
    dsn = await _database(database_factory)
    world = random_world(44, steps=60)
    # Every transaction here invokes the token program: watching it sees them all, with one cursor
    # (multi-wallet gaps are merged into slot order: tests/integration/test_sources.py).
    raws = [r for r in world.raws() if TOKEN_PROGRAM in tx_account_keys(r)]
    assert len(raws) == len(world.txs)
    expected = _expected(raws, world.traders)
    thirds = [raws[: len(raws) // 3], raws[len(raws) // 3 : 2 * len(raws) // 3], raws[2 * len(raws) // 3 :]]
    async with LocalRpcServer() as node:
        solana = SolanaSettings(source="helius", rpc_http_url=node.http_url, rpc_ws_url=node.ws_url,
                                wallets=[TOKEN_PROGRAM])
        policy = LivePolicy(backoff_initial_s=0.02, backoff_max_s=0.1, batch_size=20)
        config = PipelineConfig(shard_count=3, price_shards=2, batch_size=20, dsn=dsn, resume=False,
                                flush_idle_s=0.3, namespace=_namespace())
        pipeline = start(config, SourceSpec("settings", solana=solana, tracked=tuple(world.traders),
                                            live_policy=policy))
        try:
            await node.wait_for_subscriptions(1, timeout=60)
            for raw in thirds[0]:
                await node.publish(raw, slot=raw["slot"])
            await _until(lambda: _count(dsn, "transactions"), len(thirds[0]))
            node.accepting = False
            await node.drop_connections()
            for raw in thirds[1]:  # nobody listens: only a backfill can find these
                await node.publish(raw, slot=raw["slot"])
            node.accepting = True
            await node.wait_for_subscriptions(1, timeout=30)
            for raw in thirds[2]:
                await node.publish(raw, slot=raw["slot"])
            await _until(lambda: _count(dsn, "transactions"), len(raws))
            await _until(lambda: _moments_equal(dsn, expected), True)
            await pipeline.supervisor.stop.remote()
            summary = await pipeline.supervisor.wait.remote()
        finally:
            pipeline.shutdown()
    counts, moments, signatures = await _stored(dsn)
    assert signatures == {r["transaction"]["signatures"][0] for r in raws}
    assert moments == expected and {m["kind"] for m in expected.values()} == {
        "S2E", "BHD", "BAD_ROUTE", "IDLE_YIELD", "RUG"}
    assert summary["gaps"] >= 1 and summary["source_stats"]["backfilled"] >= len(thirds[1])


async def _count(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 - fixed table names
    finally:
        await conn.close()


async def _moments_equal(dsn: str, expected: dict[str, dict[str, Any]]) -> bool:
    return (await _stored(dsn))[1] == expected


async def _until(probe: Any, want: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := await probe()) != want:
        assert time.monotonic() < deadline, f"still {got!r}, want {want!r}"
        await asyncio.sleep(0.1)

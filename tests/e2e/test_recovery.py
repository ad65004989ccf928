"""Crash recovery through PostgreSQL: actors killed mid-stream, with periodic checkpoints stored.

A killed shard or price actor is restored (with its peers) to the last barrier and the
batches since are replayed; a killed `oof:ingest` loses its retained batches, its
assembler and its cursors with its process, and the supervisor runs it again, which
resumes from the checkpoint stored in `shard_checkpoints` (and, live, the cursors stored
with it) — also with `resume` off (`oof run --fresh`: "fresh" ignores earlier runs'
checkpoints, not the run's own). Either way the database must end up exactly as the
in-process engine says: the same moments, every transaction and trade once, every price
tick counted once in the candles.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import ray

from actors import PipelineConfig, SourceSpec
from actors.config import INGEST_KEY_BASE
from core.parse import parse_transaction
from core.settings import SolanaSettings
from deployments.pipeline import Pipeline, start
from streams.codec import tx_account_keys
from streams.sources import LivePolicy
from tests.e2e.test_pipeline import (TOKEN_PROGRAM, _count, _database, _engine, _moments_equal, _namespace, _stored,
                                     _until)
from streams.localnode import LocalRpcServer
from tests.scenarios.random_world import random_world

pytestmark = pytest.mark.usefixtures("ray_cluster")


def _trades(raws: list[dict[str, Any]]) -> int:
    """Trade events the sink stores: the fee payer's view of every transaction."""
    return sum(len(parse_transaction(raw).trades) for raw in raws)


def _recording(tmp_path: Path, raws: list[dict[str, Any]]) -> Path:
    src = tmp_path / "recording.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in raws))
    return src


async def _checkpointed(dsn: str) -> int | None:
    """The last slot of the stored ingest checkpoint (None: no barrier stored yet)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT max(last_slot) FROM shard_checkpoints WHERE shard_count >= $1",
                                   INGEST_KEY_BASE)
    finally:
        await conn.close()


async def _ticks(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT coalesce(sum(ticks), 0) FROM price_candles"))
    finally:
        await conn.close()


async def _checkpoint_past(dsn: str, slot: int, timeout: float = 30.0) -> int:
    """Until a stored checkpoint covers `slot`; returns its last slot."""
    deadline = time.monotonic() + timeout
    while (stored := await _checkpointed(dsn)) is None or stored < slot:
        assert time.monotonic() < deadline, f"no checkpoint past slot {slot} stored (last: {stored})"
        await asyncio.sleep(0.01)
    return stored


def _mid(raws: list[dict[str, Any]]) -> int:
    """A slot past the dedup horizon (150 slots) and well before the end: a restarted assembler
    meets input it has seen (a duplicate) and input older than its horizon (stale)."""
    slot = raws[len(raws) * 3 // 5]["slot"]
    assert raws[0]["slot"] + 150 < slot < raws[-1]["slot"] - 50
    return slot


def _kill(pipeline: Pipeline, *names: str) -> None:
    for name in names:  # a crash: Ray restarts the process (max_restarts)
        ray.kill(ray.get_actor(name, namespace=pipeline.config.namespace), no_restart=False)


async def _assert_stored_exactly(dsn: str, raws: list[dict[str, Any]], expected: dict[str, Any], ticks: int) -> None:
    counts, moments, signatures = await _stored(dsn)
    assert moments == expected and len(moments) > 10
    assert signatures == {r["transaction"]["signatures"][0] for r in raws}
    assert counts["transactions"] == len(raws) and counts["trade_events"] == _trades(raws)
    assert counts["moments"] == len(expected)
    assert await _ticks(dsn) == ticks  # candle volumes/ticks add up: a partial stored twice would show


async def test_killing_a_shard_and_a_price_actor_with_stored_checkpoints_loses_and_duplicates_nothing(
        database_factory: Any, tmp_path: Path) -> None:
    dsn = await _database(database_factory)
    world = random_world(5, steps=300, traders=6, tokens=5)
    raws = world.raws()
    expected, ticks = _engine(raws, {tx_account_keys(r)[0] for r in raws})
    src = _recording(tmp_path, raws)
    config = PipelineConfig(shard_count=3, price_shards=2, batch_size=10, queue_max_batches=4,
                            checkpoint_every_batches=3, dsn=dsn, namespace=_namespace())
    pipeline = start(config, SourceSpec("file", path=str(src)))
    try:
        stored = await _checkpoint_past(dsn, _mid(raws))
        _kill(pipeline, "oof:shard-01", "oof:prices-0")
        summary = await pipeline.supervisor.wait.remote()
        await _assert_stored_exactly(dsn, raws, expected, ticks)
        # The stored checkpoint is the end state: a rerun resumes from it and changes nothing.
        before = await _stored(dsn)
        pipeline.rerun(SourceSpec("file", path=str(src)))
        again = await pipeline.supervisor.wait.remote()
        after = await _stored(dsn)
    finally:
        pipeline.shutdown()
    assert stored < raws[-1]["slot"]  # killed mid-stream, after a barrier was stored
    assert summary["recoveries"] >= 1
    assert summary["restarts"]["oof:shard-01"] >= 1 and summary["restarts"]["oof:prices-0"] >= 1
    assert after == before and await _ticks(dsn) == ticks
    # (The assembler's counters are part of the checkpoint: they go on from the stored ones.)
    assert again["engine"]["views"] == summary["engine"]["views"]  # every input seen before (or too old)
    assert again["engine"]["duplicates"] + again["engine"]["stale"] > summary["engine"]["duplicates"]


@pytest.mark.parametrize("resume", [True, False], ids=["resume", "fresh"])
async def test_killing_the_ingest_of_a_recording_resumes_from_the_stored_checkpoint(
        database_factory: Any, tmp_path: Path, resume: bool) -> None:
    dsn = await _database(database_factory)
    world = random_world(7, steps=300, traders=6, tokens=5)
    raws = world.raws()
    expected, ticks = _engine(raws, {tx_account_keys(r)[0] for r in raws})
    solana = SolanaSettings(source="replay", replay_file=_recording(tmp_path, raws))
    config = PipelineConfig(shard_count=2, price_shards=2, batch_size=10, queue_max_batches=4,
                            checkpoint_every_batches=3, dsn=dsn, resume=resume, namespace=_namespace())
    pipeline = start(config, SourceSpec("settings", solana=solana))
    try:
        stored = await _checkpoint_past(dsn, _mid(raws))
        _kill(pipeline, "oof:ingest")
        summary = await pipeline.supervisor.wait.remote()  # the rerun's: the supervisor ran the ingest again
        status = await pipeline.supervisor.status.remote()
        await _assert_stored_exactly(dsn, raws, expected, ticks)
    finally:
        pipeline.shutdown()
    assert stored < raws[-1]["slot"]
    assert summary["restarts"]["oof:ingest"] >= 1 and status["actors"]["oof:ingest"]["restarts"] >= 1
    # Resumed, not started over: what the checkpoint covers is recognised as seen (or too old).
    assert summary["engine"]["duplicates"] > 0 and summary["engine"]["stale"] > 0


def _at_slot_boundaries(raws: list[dict[str, Any]], parts: int) -> list[list[dict[str, Any]]]:
    """`raws` cut in `parts` runs, never inside a slot (an idle live flush runs a slot as it stands)."""
    cuts = [0]
    for k in range(1, parts):
        i = k * len(raws) // parts
        while 0 < i < len(raws) and raws[i]["slot"] == raws[i - 1]["slot"]:
            i += 1
        cuts.append(i)
    cuts.append(len(raws))
    return [raws[a:b] for a, b in zip(cuts, cuts[1:])]


@pytest.mark.parametrize("resume", [True, False], ids=["resume", "fresh"])
async def test_killing_the_ingest_of_a_live_helius_source_resumes_from_the_stored_cursor(
        database_factory: Any, resume: bool) -> None:
    dsn = await _database(database_factory)
    world = random_world(44, steps=80)
    # Every transaction invokes the token program: one watched address, one cursor.
    raws = [r for r in world.raws() if TOKEN_PROGRAM in tx_account_keys(r)]
    assert len(raws) == len(world.txs)
    expected, ticks = _engine(raws, world.traders)
    before, during, after = _at_slot_boundaries(raws, 3)
    async with LocalRpcServer() as node:
        solana = SolanaSettings(source="helius", rpc_http_url=node.http_url, rpc_ws_url=node.ws_url,
                                wallets=[TOKEN_PROGRAM])
        policy = LivePolicy(backoff_initial_s=0.02, backoff_max_s=0.1, batch_size=5)
        config = PipelineConfig(shard_count=2, price_shards=2, batch_size=5, checkpoint_every_batches=2, dsn=dsn,
                                resume=resume, flush_idle_s=0.3, namespace=_namespace())
        pipeline = start(config, SourceSpec("settings", solana=solana, tracked=tuple(world.traders),
                                            live_policy=policy))
        try:
            await node.wait_for_subscriptions(1, timeout=60)

            async def publish(raws: list[dict[str, Any]], pause: float) -> None:
                for raw in raws:
                    await node.publish(raw, slot=raw["slot"])
                    await asyncio.sleep(pause)

            publisher = asyncio.create_task(publish(before, 0.01))
            stored = await _checkpoint_past(dsn, before[len(before) // 2]["slot"])
            node.accepting = False  # the restarted ingest's socket waits until `during` is published
            _kill(pipeline, "oof:ingest")  # mid-stream: the publisher goes on, nobody listens for a while
            await publisher
            await publish(during, 0)  # only the restarted ingest's backfill from the stored cursor finds these
            node.accepting = True
            await _until(lambda: _connected(node), True, timeout=30)
            await publish(after, 0)
            await _until(lambda: _count(dsn, "transactions"), len(raws), timeout=30)
            await _until(lambda: _moments_equal(dsn, expected), True, timeout=30)
            status = await pipeline.supervisor.status.remote()
            await pipeline.supervisor.stop.remote()  # the final checkpoint stores the last candles
            summary = await pipeline.supervisor.wait.remote()
            await _assert_stored_exactly(dsn, raws, expected, ticks)
        finally:
            pipeline.shutdown()
    assert stored < raws[-1]["slot"] and node.ws_connects >= 2
    assert summary["restarts"]["oof:ingest"] >= 1 and status["actors"]["oof:ingest"]["restarts"] >= 1
    assert summary["source_stats"]["backfilled"] >= len(during)


async def _connected(node: LocalRpcServer) -> bool:
    """The restarted ingest's socket is up and subscribed (the dead one's is gone)."""
    return node.ws_connects >= 2 and node.subscriptions("transaction") >= 1

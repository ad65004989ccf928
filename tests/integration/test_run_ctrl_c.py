"""README command 1's promises, end to end in a child process: `oof run` with no `DATABASE_URL`
(the embedded PostgreSQL), a live source, Ctrl-C storing a final checkpoint, and a second run
resuming from it — backfilling what was published while it was down — to exactly the moments
the in-process engine finds over everything."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from core.codec import moment_to_dict
from core.engine import Engine
from streams.codec import tx_account_keys
from streams.storage import list_moments, start_embedded, stop_embedded
from streams.localnode import LocalRpcServer
from tests.scenarios.random_world import random_world

ROOT = Path(__file__).resolve().parents[2]


async def test_ctrl_c_checkpoints_and_the_next_run_resumes_on_the_embedded_database(tmp_path: Path) -> None:
    world = random_world(21, steps=50)
    raws = world.raws()
    payers = sorted({tx_account_keys(r)[0] for r in raws})  # traders and market makers: every tx is theirs
    engine = Engine(tracked=payers)
    expected = {m.id: moment_to_dict(m) for m in [*engine.process_batch(raws), *engine.flush()]}
    first, second = raws[: len(raws) // 2], raws[len(raws) // 2 :]
    data_dir = tmp_path / "pg"
    async with LocalRpcServer() as node:
        config = tmp_path / "oof.yaml"
        config.write_text(yaml.safe_dump({
            "database": {"embedded_dir": str(data_dir)},
            "solana": {"source": "helius", "rpc_http_url": node.http_url, "rpc_ws_url": node.ws_url,
                       "wallets": payers},
            "pipeline": {"shard_count": 2, "price_shards": 1, "batch_size": 20, "checkpoint_interval_s": 1.0},
            "analyze": {"enabled": False},
            "log": {"level": "WARNING"},
        }))
        try:
            out1 = await _run_until_ctrl_c(node, config, first, data_dir, want=len(first))
            out2 = await _run_until_ctrl_c(node, config, second, data_dir, want=len(raws), publish_first=True)
            stored = await _stored(data_dir)
        finally:
            await asyncio.to_thread(stop_embedded, data_dir)
    for out in (out1, out2):
        assert "(final checkpoint stored)" in out, out
    assert stored == expected and len(stored) > 5


async def _run_until_ctrl_c(node: LocalRpcServer, config: Path, raws: list[dict[str, Any]], data_dir: Path, *,
                            want: int, publish_first: bool = False) -> str:
    """Publish `raws` (before the run starts, if `publish_first`: it must backfill them), wait until
    `want` transactions are stored, then SIGINT; returns stdout after checking the exit."""
    if publish_first:
        for raw in raws:
            await node.publish(raw, slot=raw["slot"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOF_") and k != "DATABASE_URL"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deployments.cli", "run", "--no-api", "--config", str(config),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await node.wait_for_subscriptions(1, "transaction", timeout=120)
        if not publish_first:
            for raw in raws:
                await node.publish(raw, slot=raw["slot"])
        deadline = time.monotonic() + 60
        while await _count(data_dir) < want:
            assert proc.returncode is None and time.monotonic() < deadline, "transactions not stored in time"
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.5)  # let the batch's moments reach the sink too
        proc.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()[-3000:]
    assert b"Traceback" not in stderr, stderr.decode()[-3000:]
    return stdout.decode()


async def _connect(data_dir: Path) -> asyncpg.Connection:
    return await asyncpg.connect(await asyncio.to_thread(start_embedded, data_dir))


async def _count(data_dir: Path) -> int:
    if not (data_dir / "postmaster.pid").exists():
        return 0
    try:
        conn = await _connect(data_dir)
    except (OSError, asyncpg.PostgresError):
        return 0
    try:
        return int(await conn.fetchval("SELECT count(*) FROM transactions"))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def _stored(data_dir: Path) -> dict[str, dict[str, Any]]:
    conn = await _connect(data_dir)
    try:
        return {m.id: moment_to_dict(m) for m in await list_moments(conn, limit=10_000)}
    finally:
        await conn.close()

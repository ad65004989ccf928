"""`oof run` end to end against a real PostgreSQL: migrate, run the bundled demo through the pipeline, twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.integration.conftest import DatabaseFactory

ROOT = Path(__file__).resolve().parents[2]


def _oof_run(dsn: str, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOF_")}
    env.update(DATABASE_URL=dsn, OOF_LOG__LEVEL="WARNING", **env_vars)
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli", "run", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


async def _counts(dsn: str) -> tuple[int, int, int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM transactions"),
            await conn.fetchval("SELECT count(*) FROM trade_events"),
            await conn.fetchval("SELECT count(*) FROM moments"),
            await conn.fetchval("SELECT count(*) FROM schema_migrations"),
        )
    finally:
        await conn.close()


async def test_run_migrates_and_stores_the_recording_idempotently(database_factory: DatabaseFactory) -> None:
    dsn = await database_factory()  # empty: `oof run` must migrate it itself

    first = _oof_run(dsn)
    assert first.returncode == 0, first.stderr
    assert "262 transactions (15 failed), 246 trades" in first.stdout
    counts = await _counts(dsn)
    # The demo makes each detector fire: S2E, BHD x2, BAD_ROUTE, IDLE_YIELD, RUG.
    assert counts[:3] == (262, 246, 6)

    second = _oof_run(dsn)
    assert second.returncode == 0, second.stderr
    assert await _counts(dsn) == counts

    # Another layout finds no checkpoint of its own: it refuses, in one line, instead of resuming
    # the stored cursors with every wallet's state forgotten; `--fresh` starts from nothing.
    resharded = _oof_run(dsn, OOF_PIPELINE__SHARD_COUNT="3")
    assert resharded.returncode == 1 and "Traceback" not in resharded.stderr
    last = resharded.stderr.strip().splitlines()[-1]
    assert last.startswith("oof run: the pipeline failed: LayoutChanged") and "4 shards x 2 price actors" in last
    fresh = _oof_run(dsn, "--fresh", OOF_PIPELINE__SHARD_COUNT="3")
    assert fresh.returncode == 0, fresh.stderr
    assert await _counts(dsn) == counts  # the same moments, rebuilt from the recording


def test_unreachable_database_is_one_clear_line() -> None:
    done = _oof_run("postgresql://postgres@127.0.0.1:1/nowhere")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("oof run:")

"""Analyze jobs end to end: `oof:analyze` claims a queued job, lists the wallet's history from a
JSON-RPC node over a real socket, runs it through its lane of actors and stores exactly the
moments the in-process engine finds in that history — with progress, limits, reruns that
upsert and RPC failures that end the job `failed` with a readable error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
import ray
from ulid import ULID

from actors import PipelineConfig
from core.codec import moment_to_dict
from core.engine import Engine
from core.settings import AnalyzeSettings, Settings, SolanaSettings
from deployments.pipeline import start_analyze_runner
from streams.codec import tx_account_keys
from streams.storage import Job, JobStatus, create_job, get_job, list_moments
from tests.e2e.conftest import ApiServer, unique_user
from streams.localnode import LocalRpcServer
from tests.scenarios.random_world import random_world

pytestmark = pytest.mark.usefixtures("ray_cluster")


async def _submit(dsn: str, wallets: list[str], limit: int | None = None) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        job = await create_job(conn, str(ULID()), "analyst", wallets, progress={} if limit is None else {"limit": limit})
    finally:
        await conn.close()
    assert job is not None
    return job.id


async def _finished(dsn: str, job_id: str, timeout: float = 90.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        conn = await asyncpg.connect(dsn)
        try:
            job = await get_job(conn, job_id)
        finally:
            await conn.close()
        assert job is not None
        if job.status in (JobStatus.DONE, JobStatus.FAILED):
            return job
        assert time.monotonic() < deadline, f"job still {job.status}: {job.progress}"
        await asyncio.sleep(0.2)


async def _stored_moments(dsn: str, wallet: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {m.id: moment_to_dict(m) for m in await list_moments(conn, wallet=wallet, limit=10_000)}
    finally:
        await conn.close()


async def _link(dsn: str, user: str, wallet: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO wallet_links (user_id, wallet) VALUES ($1, $2)", user, wallet)
    finally:
        await conn.close()


def _expected(raws: list[dict[str, Any]], wallet: str) -> dict[str, dict[str, Any]]:
    engine = Engine(tracked=[wallet])
    return {m.id: moment_to_dict(m) for m in [*engine.process_batch(raws), *engine.flush()]}


async def test_an_analyze_job_runs_a_wallets_history_through_the_lane(database_factory: Any) -> None:
    dsn = await database_factory(migrated=True)
    world = random_world(44, steps=150, traders=3, tokens=3)
    raws = world.raws()
    wallet = world.traders[0]
    history = [r for r in raws if wallet in tx_account_keys(r)]
    expected = _expected(history, wallet)
    assert expected and len(history) < len(raws)  # the job sees only its wallet's transactions

    async with LocalRpcServer(raws) as node:
        settings = Settings(analyze=AnalyzeSettings(poll_s=0.2, heartbeat_s=0.5))
        solana = SolanaSettings(rpc_http_url=node.http_url, rpc_ws_url=node.ws_url)
        config = PipelineConfig(batch_size=20, dsn=dsn, namespace=f"oof-analyze-{uuid.uuid4().hex[:8]}")
        runner = start_analyze_runner(settings, config, dsn, solana)
        try:
            first = await _submit(dsn, [wallet])
            job = await _finished(dsn, first)
            assert job.status is JobStatus.DONE, job.error
            stored = await _stored_moments(dsn, wallet)

            again = await _finished(dsn, await _submit(dsn, [wallet]))  # the same history again: upserts
            stored_again = await _stored_moments(dsn, wallet)
            # A shorter history is another input: its moments are what those 7 transactions show.
            limited = await _finished(dsn, await _submit(dsn, [wallet], limit=7))
            node.fail_http(50, status=500)  # the node is down for the next job's every retry
            broken = await _finished(dsn, await _submit(dsn, [world.traders[1]]))
            while (status := await runner.status.remote())["job"] is not None:  # the runner's own bookkeeping
                await asyncio.sleep(0.1)
        finally:
            await runner.stop.remote()
            ray.kill(runner, no_restart=True)

    progress = job.progress
    assert progress["phase"] == "done" and progress["attempts"] == 1
    assert progress["signatures"] == {wallet: len(history)}
    assert progress["transactions"] == progress["processed"] == progress["fetched"] == len(history)
    assert progress["not_found"] == 0 and progress["trades"] > 0
    assert progress["moments"] == {k: sum(1 for m in expected.values() if m["kind"] == k)
                                   for k in sorted({m["kind"] for m in expected.values()})}
    assert stored == expected  # exactly the in-process engine's moments over that history

    assert again.status is JobStatus.DONE and again.progress["moments"] == progress["moments"]
    assert stored_again == expected  # no duplicates, nothing rolled back

    assert limited.status is JobStatus.DONE and limited.progress["limit"] == 7
    assert limited.progress["signatures"] == {wallet: 7} and limited.progress["processed"] == 7

    assert broken.status is JobStatus.FAILED and broken.progress["phase"] == "failed"
    assert broken.error and "solana-rpc" in broken.error and "HTTP 500" not in broken.error  # no internals
    assert status["done"] == 3 and status["failed"] == 1 and status["job"] is None


async def test_a_user_analyzes_a_linked_wallet_over_the_api(api_server: ApiServer) -> None:
    world = random_world(45, steps=80, traders=2, tokens=2)
    wallet, user = world.traders[0], unique_user("e2e-analyze")
    expected = _expected([r for r in world.raws() if wallet in tx_account_keys(r)], wallet)
    assert expected
    await _link(api_server.dsn, user, wallet)
    headers = api_server.user_headers(user)
    async with LocalRpcServer(world.raws()) as node, httpx.AsyncClient(
            base_url=api_server.base_url, trust_env=False, timeout=10) as http:
        settings = Settings(analyze=AnalyzeSettings(poll_s=0.2, heartbeat_s=0.5))
        solana = SolanaSettings(rpc_http_url=node.http_url, rpc_ws_url=node.ws_url)
        config = PipelineConfig(batch_size=20, dsn=api_server.dsn, namespace=f"oof-analyze-{uuid.uuid4().hex[:8]}")
        runner = start_analyze_runner(settings, config, api_server.dsn, solana)
        try:
            submitted = await http.post("/v1/analyze", json={"wallets": [wallet]}, headers=headers)
            assert submitted.status_code == 202, submitted.text
            assert submitted.json()["status"] == "queued"
            await _finished(api_server.dsn, submitted.json()["job_id"])  # polled in the database: no rate limit
            job = await http.get(submitted.headers["location"], headers=headers)
            listing = await http.get("/v1/moments", params={"wallet": wallet, "limit": 100}, headers=headers)
            stranger = await http.get(submitted.headers["location"], headers=api_server.user_headers(unique_user("x")))
        finally:
            await runner.stop.remote()
            ray.kill(runner, no_restart=True)
    assert job.status_code == 200 and job.json()["status"] == "done", job.text
    assert job.json()["progress"]["processed"] == job.json()["progress"]["transactions"] > 0
    assert listing.status_code == 200 and {m["id"] for m in listing.json()["items"]} == set(expected)
    assert stranger.status_code == 404  # another user's job is invisible


async def test_a_lane_ray_cannot_place_fails_the_job_with_the_reason(database_factory: Any) -> None:
    dsn = await database_factory(migrated=True)
    world = random_world(46, steps=20, traders=1, tokens=2)
    async with LocalRpcServer(world.raws()) as node:
        # Reservations no 2-CPU node can meet: the lane's actors stay pending.
        settings = Settings(analyze=AnalyzeSettings(poll_s=0.2, heartbeat_s=0.5, cpu_budget=64, start_timeout_s=3))
        solana = SolanaSettings(rpc_http_url=node.http_url, rpc_ws_url=node.ws_url)
        config = PipelineConfig(dsn=dsn, namespace=f"oof-analyze-{uuid.uuid4().hex[:8]}")
        runner = start_analyze_runner(settings, config, dsn, solana)
        try:
            job = await _finished(dsn, await _submit(dsn, [world.traders[0]]), timeout=60)
            while (status := await runner.status.remote())["job"] is not None:  # the runner's own bookkeeping
                await asyncio.sleep(0.1)
        finally:
            await runner.stop.remote()
            ray.kill(runner, no_restart=True)
    assert job.status is JobStatus.FAILED and job.error == "the analysis pipeline failed; submit the job again later"
    assert job.progress["phase"] == "failed" and status["failed"] == 1

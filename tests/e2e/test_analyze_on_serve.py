"""The API on Ray Serve keeps `oof:analyze` itself: without `oof run`, a `POST /v1/analyze` job
is done; replicas share one runner (including a runner `oof run` started), and deleting the
app stops the runner the API started — and only that one.

Each test deploys the API once more as its own Serve application (own name and route prefix,
on the session's Serve and HTTP port, its own database) whose replicas keep a runner in a Ray
namespace of the test's own; the shared `api_server` keeps none (tests/e2e/conftest.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import ray
from ray import serve
from ray.exceptions import RayActorError

from actors import PipelineConfig
from core.settings import AnalyzeSettings, Settings, SolanaSettings
from deployments import serve_app
from deployments.pipeline import start_analyze_runner
from streams.codec import tx_account_keys
from streams.storage import JobStatus
from tests.e2e.conftest import ApiServer, ray_keeps_its_hands_off_logging, replica_env, unique_user
from tests.e2e.test_analyze import _expected, _finished, _link, _stored_moments
from streams.localnode import LocalRpcServer
from tests.scenarios.random_world import random_world

pytestmark = pytest.mark.usefixtures("ray_cluster")

APP, PREFIX, RUNNER = "oof-api-keeps-a-runner", "/keeps-a-runner", "oof:analyze"
NO_NODE = "http://127.0.0.1:9/"  # never the real mainnet from a test


@asynccontextmanager
async def _api_keeping_a_runner(api_server: ApiServer, dsn: str, namespace: str, *, replicas: int,
                                env: Mapping[str, str] | None = None) -> AsyncIterator[str]:
    """The API as its own app over `dsn`, keeping a runner in `namespace`; deleted on the way out."""
    env = {**replica_env(dsn, api_server.jwks), "OOF_ANALYZE__ENABLED": "true", "OOF_ANALYZE__RAY_NAMESPACE": namespace,
           "OOF_ANALYZE__POLL_S": "0.2", "OOF_ANALYZE__HEARTBEAT_S": "0.5",
           "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",  # deleted in seconds, not 30 (docs/SERVE.md)
           **(env or {})}
    url = urlsplit(api_server.base_url)
    overrides = {"num_replicas": replicas,  # 0.1 CPU each: the shared API's replicas and a job's lane fit beside
                 "ray_actor_options": {"num_cpus": 0.1, "runtime_env": {"env_vars": env}}}
    try:
        with ray_keeps_its_hands_off_logging():
            yield await asyncio.to_thread(serve_app.run, serve_app.load_serve_config(), http_host=url.hostname,
                                          http_port=url.port, overrides=overrides, name=APP, route_prefix=PREFIX)
    finally:
        await asyncio.to_thread(serve.delete, APP)  # each replica's __del__ releases the runner


def _named(namespace: str) -> list[str]:
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == namespace)


async def _held_by(namespace: str, holders: int, timeout: float = 60.0) -> dict[str, Any]:
    """The runner's status once `holders` replicas hold it."""
    deadline, status = time.monotonic() + timeout, None
    while True:
        try:
            status = await ray.get_actor(RUNNER, namespace=namespace).status.remote()
            if len(status["holders"]) == holders:
                return status
        except (ValueError, RayActorError):
            pass  # not created yet
        assert time.monotonic() < deadline, f"runner status: {status}"
        await asyncio.sleep(0.2)


async def _left_over(namespace: str, timeout: float = 30.0) -> list[str]:
    """The actors still named in `namespace` once they are gone, or after `timeout`."""
    deadline = time.monotonic() + timeout
    while (names := _named(namespace)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return names


def _kill_all(namespace: str) -> None:
    """Whatever a failing test left in its namespace (the session's Ray outlives the test)."""
    for name in _named(namespace):
        try:
            ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
        except ValueError:
            pass


async def test_the_api_alone_runs_a_job_with_one_runner_its_replicas_share(
        api_server: ApiServer, database_factory: Any) -> None:
    dsn, namespace = await database_factory(migrated=True), f"oof-serve-{uuid.uuid4().hex[:8]}"
    world = random_world(47, steps=80, traders=2, tokens=2)
    wallet, user = world.traders[0], unique_user("e2e-serve-runner")
    expected = _expected([r for r in world.raws() if wallet in tx_account_keys(r)], wallet)
    assert expected
    await _link(dsn, user, wallet)
    headers = api_server.user_headers(user)
    try:
        async with LocalRpcServer(world.raws()) as node, _api_keeping_a_runner(
                api_server, dsn, namespace, replicas=2,
                env={"OOF_SOLANA__RPC_HTTP_URL": node.http_url, "OOF_SOLANA__RPC_WS_URL": node.ws_url}) as base:
            held = await _held_by(namespace, 2)  # both replicas started, each found or made the runner
            runners = _named(namespace)
            async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=10) as http:
                submitted = await http.post("/v1/analyze", json={"wallets": [wallet]}, headers=headers)
                assert submitted.status_code == 202, submitted.text
                job = await _finished(dsn, submitted.json()["job_id"])  # polled in the database: no rate limit
                seen = await http.get(f"/v1/analyze/{job.id}", headers=headers)
            lane = _named(namespace)
        left = await _left_over(namespace)  # the app is deleted: its last replica released the runner
    finally:
        _kill_all(namespace)
    assert runners == [RUNNER] and held["lease_s"] is not None  # one runner for two replicas, the API's own
    assert job.status is JobStatus.DONE, job.error
    assert job.progress["moments"] == {k: sum(1 for m in expected.values() if m["kind"] == k)
                                       for k in sorted({m["kind"] for m in expected.values()})}
    assert await _stored_moments(dsn, wallet) == expected  # exactly the in-process engine's moments
    assert seen.status_code == 200 and seen.json()["status"] == "done", seen.text
    assert RUNNER in lane and "oof-analyze:supervisor" in lane
    assert left == []  # the runner stopped and took its lane with it


async def test_the_api_holds_the_runner_oof_run_started_and_leaves_it_running(
        api_server: ApiServer, database_factory: Any) -> None:
    dsn, namespace = await database_factory(migrated=True), f"oof-run-{uuid.uuid4().hex[:8]}"
    settings = Settings(analyze=AnalyzeSettings(ray_namespace=namespace))
    # What `oof run` does (config without a namespace: the runner goes to `analyze.ray_namespace`).
    runner = start_analyze_runner(settings, PipelineConfig(dsn=dsn), dsn, SolanaSettings(rpc_http_url=NO_NODE))
    try:
        started = await runner.status.remote()
        async with _api_keeping_a_runner(api_server, dsn, namespace, replicas=2):
            held = await _held_by(namespace, 2)
            runners = _named(namespace)
        after = await runner.status.remote()  # the app is gone
    finally:
        await runner.stop.remote()  # as `oof run` stops it
        ray.kill(runner, no_restart=True)
        _kill_all(namespace)
    assert runners == [RUNNER] and held["incarnation"] == started["incarnation"]  # reused, not duplicated
    assert held["lease_s"] is None and after["running"] and after["holders"] == []  # released, not stopped

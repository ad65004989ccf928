"""/health, /health/ready and /health/detailed against real dependencies (and deliberately dead ones)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from deployments.auth.testing import JwksServer, RsaTestKey
from tests.unit.deployments.api.conftest import CLOSED_PORT_URL, Api, api_settings, running_api

CHECKS = {"database", "redis", "jwks", "solana_rpc", "jupiter", "storage", "pipeline", "analyze"}


@pytest.fixture(scope="module")
def solana_rpc() -> Iterator[str]:
    """A JSON-RPC endpoint whose getHealth answers "ok"."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["content-length"]))
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": "ok"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


async def test_liveness_needs_nothing(api: Api) -> None:
    response = await api.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readiness_checks_the_database(api: Api) -> None:
    body = (await api.get("/health/ready")).json()
    assert body["status"] == "ok" and set(body["checks"]) == {"database"}
    assert body["checks"]["database"]["critical"] is True


async def test_detailed_is_for_services_and_reports_every_dependency(
    api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer, solana_rpc: str, tmp_path: Any
) -> None:
    settings = api_settings(api_dsn, solana={"rpc_http_url": solana_rpc})
    async with running_api(settings, signing_key, jwks_server.url, cards_dir=tmp_path / "cards") as api:
        assert (await api.get("/health/detailed")).status_code == 401
        assert (await api.get("/health/detailed", user="u")).status_code == 403
        body = (await api.get("/health/detailed", service=True)).json()
    assert set(body["checks"]) == CHECKS
    assert body["status"] == "ok", body
    statuses = {name: check["status"] for name, check in body["checks"].items()}
    assert statuses == {**dict.fromkeys(CHECKS, "ok"), "jupiter": "disabled"}
    assert body["checks"]["database"]["critical"] and not body["checks"]["redis"]["critical"]
    assert all(check["latency_ms"] >= 0 for check in body["checks"].values())
    assert body["checks"]["storage"]["detail"]["path"] == str(tmp_path / "cards")
    assert body["checks"]["jwks"]["detail"]["key_ids"] == ["api-test-key"]


async def test_redis_on_a_closed_port_is_degraded_with_memory_fallbacks(
    api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer
) -> None:
    settings = api_settings(api_dsn, redis={"url": CLOSED_PORT_URL, "socket_timeout_s": 0.3})
    async with running_api(settings, signing_key, jwks_server.url) as api:
        assert (await api.get("/v1/moments", user="still-served")).status_code == 200
        body = (await api.get("/health/detailed", service=True)).json()
    assert body["status"] == "degraded"
    redis = body["checks"]["redis"]
    assert redis["status"] == "down" and redis["critical"] is False
    assert redis["detail"]["rate_limiter_backend"] == "memory"
    assert body["checks"]["database"]["status"] == "ok"


async def test_a_dead_database_fails_readiness_with_a_503_problem(
    api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer
) -> None:
    async with running_api(api_settings(api_dsn), signing_key, jwks_server.url) as api:
        await api.deps.pool.close()
        ready = await api.get("/health/ready")
        live = await api.get("/health")
    assert live.status_code == 200
    assert ready.status_code == 503 and ready.headers["content-type"] == "application/problem+json"
    body = ready.json()
    assert body["type"] == "https://oof.dev/problems/not-ready" and body["checks"] == {"database": "down"}


async def test_a_stale_pipeline_checkpoint_is_degraded(clean: Api) -> None:
    async with clean.deps.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO shard_checkpoints (shard_count, shard, snapshot, last_slot, updated_at)"
            " VALUES (1, 0, '\\x00', 1, now() - interval '1 day')"
        )
    try:
        body = (await clean.get("/health/detailed", service=True)).json()
    finally:
        async with clean.deps.pool.acquire() as conn:
            await conn.execute("TRUNCATE shard_checkpoints")
    pipeline = body["checks"]["pipeline"]
    assert pipeline["status"] == "degraded" and pipeline["detail"]["checkpoint_age_s"] >= 86_000


async def test_queued_analyze_jobs_that_nobody_runs_are_degraded(clean: Api) -> None:
    async with clean.deps.pool.acquire() as conn:
        await conn.execute("INSERT INTO analyze_jobs (id, user_id, wallets) VALUES ('fresh', 'u', '{}')")
        fresh = (await clean.get("/health/detailed", service=True)).json()["checks"]["analyze"]
        await conn.execute("UPDATE analyze_jobs SET created_at = now() - interval '1 hour'")
        try:
            waiting = (await clean.get("/health/detailed", service=True)).json()["checks"]["analyze"]
            clean.deps.analyze_runner.set("disabled")
            disabled = (await clean.get("/health/detailed", service=True)).json()["checks"]["analyze"]
        finally:
            clean.deps.analyze_runner.state, clean.deps.analyze_runner.detail = "unmanaged", {}
            await conn.execute("TRUNCATE analyze_jobs")
    assert fresh["status"] == "ok" and fresh["detail"]["queued"] == 1 and fresh["detail"]["running"] == 0
    assert waiting["status"] == "degraded" and waiting["detail"]["oldest_queued_s"] >= 3500
    assert "oof:analyze" in waiting["detail"]["note"] and waiting["detail"]["runner"] == {"state": "unmanaged"}
    assert disabled["status"] == "degraded" and "analyze.enabled is false" in disabled["detail"]["note"]


async def test_a_runner_ray_could_not_start_is_degraded_even_with_an_empty_queue(clean: Api) -> None:
    clean.deps.analyze_runner.set("unavailable", actor="oof:analyze", namespace="oof", error="RuntimeError: no GCS")
    try:
        check = (await clean.get("/health/detailed", service=True)).json()["checks"]["analyze"]
    finally:
        clean.deps.analyze_runner.state, clean.deps.analyze_runner.detail = "unmanaged", {}
    assert check["status"] == "degraded" and check["detail"]["queued"] == 0
    assert check["detail"]["runner"] == {"state": "unavailable", "actor": "oof:analyze", "namespace": "oof",
                                         "error": "RuntimeError: no GCS"}
    assert "could not start the analyze runner" in check["detail"]["note"]

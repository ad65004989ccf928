"""The API on the real Serve HTTP port: JWT flow, problems, rate limits across two replicas, readiness, metrics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import httpx
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from solders.pubkey import Pubkey

from core.models import Moment, MomentKind, MomentStatus, moment_id
from streams.storage import upsert_moments
from tests.e2e.conftest import USER_LIMIT, USER_WINDOW_S, ApiServer, serve_client, unique_user


@pytest_asyncio.fixture(loop_scope="session")
async def http(api_server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_client(api_server.base_url) as client:
        yield client


async def test_a_dynamic_user_sees_their_linked_wallet(api_server: ApiServer, http: httpx.AsyncClient) -> None:
    user, wallet = unique_user("e2e-jwt"), str(Pubkey.new_unique())
    moment = Moment(
        id=moment_id(MomentKind.RUG, wallet, wallet, "sig"), kind=MomentKind.RUG, wallet=wallet, mint=wallet,
        severity=Decimal("0.9"), pct=Decimal("-0.95"), usd_value=Decimal("250.5"), window_start=1, window_end=2,
        sig_ref="sig", slot_ref=1, status=MomentStatus.FINAL, detected_at=1_750_000_000, updated_at=1_750_000_000,
    )
    conn = await asyncpg.connect(api_server.dsn)
    try:
        await upsert_moments(conn, [moment])
        await conn.execute("INSERT INTO wallet_links (user_id, wallet) VALUES ($1, $2)", user, wallet)
    finally:
        await conn.close()
    headers = api_server.user_headers(user)
    listing = await http.get("/v1/moments", headers=headers)
    assert listing.status_code == 200, listing.text
    assert [m["id"] for m in listing.json()["items"]] == [moment.id]
    summary = await http.get(f"/v1/wallets/{wallet}/summary", headers=headers)
    assert summary.json()["usd_value"] == "250.5" and summary.json()["worst_moment"]["id"] == moment.id
    assert (await http.get("/v1/moments", headers=headers, params={"wallet": str(Pubkey.new_unique())})).status_code == 403


async def test_missing_or_expired_tokens_are_401_problems(api_server: ApiServer, http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/moments", headers={"x-request-id": "e2e-401"})
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    body = missing.json()
    assert body["type"] == "https://oof.dev/problems/unauthorized" and body["reason"] == "token_missing"
    assert body["request_id"] == missing.headers["x-request-id"] == "e2e-401"
    expired = await http.get("/v1/moments", headers=api_server.user_headers("late", now=1_600_000_000))
    assert expired.status_code == 401 and expired.json()["reason"] == "token_expired"


async def test_the_user_limit_is_shared_by_both_replicas(api_server: ApiServer, http: httpx.AsyncClient) -> None:
    headers = api_server.user_headers(unique_user("e2e-429"))
    responses = await asyncio.gather(*(http.get("/v2/moments", headers=headers) for _ in range(USER_LIMIT + 10)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == USER_LIMIT and statuses.count(429) == 10  # one budget, not one per replica
    limited = next(r for r in responses if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-policy"] == f'"user";q={USER_LIMIT};w={USER_WINDOW_S}'
    assert re.fullmatch(r'"user";r=0;t=\d+', limited.headers["ratelimit"])
    assert limited.json()["type"] == "https://oof.dev/problems/rate-limited"
    # Both replicas took part: each one's own /metrics shows /v2/moments requests. HAProxy may
    # keep a quiet client on one replica, so keep asking (the budget is spent: every extra
    # request is a 429, and a 429 from the second replica proves it read the shared budget).
    # A replica's counts reach another's answer at its next publication (api.metrics_share_s).
    served: dict[str, float] = {}
    for _ in range(80):
        served = await _v2_requests_by_replica(api_server, http)
        if len(served) == 2:
            break
        statuses.append((await http.get("/v2/moments", headers=headers)).status_code)
        await asyncio.sleep(0.1)
    assert len(served) == 2 and all(count > 0 for count in served.values()), served
    assert statuses.count(200) == USER_LIMIT  # still one budget after every extra request


async def _v2_requests_by_replica(api_server: ApiServer, http: httpx.AsyncClient) -> dict[str, float]:
    """Replica name -> /v2/moments requests it served, from one scrape (it holds every live replica)."""
    served: dict[str, float] = {}
    for family in text_string_to_metric_families(await _scrape(api_server, http)):
        for sample in family.samples:
            if sample.name == "oof_http_request_duration_seconds_count" and sample.labels["route"] == "/v2/moments":
                replica = sample.labels["replica"]
                served[replica] = served.get(replica, 0.0) + sample.value
    return served


async def _scrape(api_server: ApiServer, http: httpx.AsyncClient) -> str:
    path, headers = api_server.service_request("GET", "/metrics")
    response = await http.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def test_readiness_and_the_detailed_report(api_server: ApiServer, http: httpx.AsyncClient) -> None:
    ready = await http.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["status"] == "ok"
    path, headers = api_server.service_request("GET", "/health/detailed")
    detailed = (await http.get(path, headers=headers)).json()
    checks = {name: check["status"] for name, check in detailed["checks"].items()}
    assert checks["database"] == checks["redis"] == checks["jwks"] == "ok"
    assert checks["solana_rpc"] == "down" and detailed["status"] == "degraded"  # nothing listens on :9


async def test_metrics_expose_every_replica_to_a_scraper_and_no_one_else(
    api_server: ApiServer, http: httpx.AsyncClient
) -> None:
    await http.get("/health")
    for _ in range(5):  # each replica publishes on every scrape it answers and every 15 s
        text = await _scrape(api_server, http)
        replicas = {m.group(1) for m in re.finditer(r'oof_http_request_duration_seconds_count\{[^}]*replica="([^"]+)"',
                                                    text)}
        if re.search(r'oof_http_request_duration_seconds_bucket\{[^}]*route="/health"', text) and len(replicas) == 2:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("a scrape should hold both replicas and the /health latency")
    assert re.search(r"^oof_metrics_replicas(\{[^}]*\})? 2\.0$", text, re.M), text[-2000:]
    assert "# TYPE oof_http_request_duration_seconds histogram" in text
    anonymous = await http.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"

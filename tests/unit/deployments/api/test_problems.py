"""Every error is application/problem+json with a stable type, and nothing internal leaks."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from core.errors import PROBLEM_TYPE_BASE
from deployments.app import build_app
from deployments.auth.testing import JwksServer, RsaTestKey, dynamic_claims, sign_token
from streams.storage import apply_migrations
from tests.unit.deployments.api.conftest import Api, api_settings, new_wallet, running_api

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "request_id"}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert PROBLEM_KEYS <= body.keys()
    assert body["type"] == PROBLEM_TYPE_BASE + slug
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_missing_credentials_are_a_401_problem(api: Api) -> None:
    body = assert_problem(await api.get("/v1/moments"), 401, "unauthorized")
    assert body["reason"] == "token_missing"


async def test_bad_tokens_say_why(api: Api, signing_key: RsaTestKey) -> None:
    expired = sign_token(dynamic_claims(sub="u1", now=1_600_000_000), signing_key)
    response = await api.client.get("/v1/moments", headers={"authorization": f"Bearer {expired}"})
    assert assert_problem(response, 401, "unauthorized")["reason"] == "token_expired"
    assert response.headers["www-authenticate"].startswith("Bearer")
    garbage = await api.client.get("/v1/moments", headers={"authorization": "Bearer not.a.jwt"})
    assert assert_problem(garbage, 401, "unauthorized")["reason"] == "token_malformed"
    basic = await api.client.get("/v1/moments", headers={"authorization": "Basic dXNlcjpwYXNz"})
    assert assert_problem(basic, 401, "unauthorized")["reason"] == "scheme_unsupported"


async def test_a_replayed_service_token_is_refused(api: Api) -> None:
    headers = api.service("GET", "/v1/moments")
    assert (await api.client.get("/v1/moments", headers=headers)).status_code == 200
    replay = await api.client.get("/v1/moments", headers=headers)
    assert assert_problem(replay, 401, "unauthorized")["reason"] == "token_replayed"


async def test_users_get_403_for_unlinked_wallets_and_service_routes(clean: Api) -> None:
    assert_problem(await clean.get("/v1/moments", user="u-403", params={"wallet": new_wallet()}), 403, "forbidden")
    assert_problem(await clean.get("/health/detailed", user="u-403"), 403, "forbidden")


async def test_unknown_routes_and_moments_are_404_problems(api: Api) -> None:
    assert_problem(await api.get("/nope"), 404, "not-found")
    assert_problem(await api.get("/v1/moments/s2e_0000", service=True), 404, "not-found")
    assert_problem(await api.client.post("/health"), 405, "http-405")


async def test_validation_errors_list_every_field(api: Api) -> None:
    response = await api.get(
        "/v1/moments", service=True,
        params={"limit": 0, "min_severity": 2, "kinds": "S2E,NOPE", "since": "yesterday", "wallet": "xyz"},
    )
    body = assert_problem(response, 422, "validation")
    fields = {error["field"] for error in body["errors"]}
    assert {"query.limit", "query.min_severity"} <= fields
    assert all(set(error) == {"field", "message"} for error in body["errors"])
    # our own checks run after FastAPI's, and report every field at once too
    response = await api.get("/v1/moments", service=True, params={"kinds": "NOPE", "since": "y", "wallet": "xyz"})
    body = assert_problem(response, 422, "validation")
    assert {e["field"] for e in body["errors"]} == {"query.kinds", "query.since", "query.wallet"}
    assert "allowed: S2E" in next(e["message"] for e in body["errors"] if e["field"] == "query.kinds")


async def test_rate_limited_requests_get_429_with_the_ietf_headers(
    api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer
) -> None:
    settings = api_settings(api_dsn, rate_limits={"policies": {"user": {"limit": 2, "window_s": 60, "burst": 0}}})
    async with running_api(settings, signing_key, jwks_server.url) as tight:
        statuses = [(await tight.get("/v1/moments", user="hasty")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        response = await tight.get("/v1/moments", user="hasty")
        body = assert_problem(response, 429, "rate-limited")
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["ratelimit-policy"] == '"user";q=2;w=60'
        assert response.headers["ratelimit"].startswith('"user";r=0;t=')
        assert body["retry_after"] >= 1
        metrics = (await tight.get("/metrics", service=True)).text
        assert 'oof_rate_limit_rejections_total{policy="user"' in metrics


async def test_database_errors_never_show_sql(database_factory: Any, signing_key: RsaTestKey, jwks_server: JwksServer) -> None:
    dsn = await database_factory()
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        await conn.execute("ALTER TABLE moments RENAME TO moments_hidden_xyz")
    finally:
        await conn.close()
    async with running_api(api_settings(dsn), signing_key, jwks_server.url) as broken:
        response = await broken.get("/v1/moments", service=True)
    body = assert_problem(response, 503, "database-unavailable")
    text = response.text.lower()
    for leak in ("select", "moments_hidden_xyz", "relation", "asyncpg", "traceback", "postgres"):
        assert leak not in text


async def test_unexpected_exceptions_are_a_generic_500_logged_with_the_request_id(
    api: Api, log_events: list[dict[str, Any]]
) -> None:
    async def explode() -> None:
        raise RuntimeError("SELECT secret FROM vault -- password=hunter2")

    app = build_app(api.deps.settings, api.deps)  # a fresh app over the shared deps, so the route stays local
    app.add_api_route("/test-only/explode", explode)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        response = await client.get("/test-only/explode", headers={"x-request-id": "boom-1"})
    body = assert_problem(response, 500, "internal")
    assert body["request_id"] == "boom-1"
    assert "hunter2" not in response.text and "SELECT" not in response.text
    errors = [e for e in log_events if e["event"] == "http.unhandled_error"]
    assert errors and errors[0]["request_id"] == "boom-1" and errors[0]["error_type"] == "RuntimeError"

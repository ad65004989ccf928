"""The middleware order (pinned), request ids, and the one access-log event per request."""

from __future__ import annotations

from typing import Any

from deployments.auth.testing import JwksServer, RsaTestKey
from deployments.compose import MIDDLEWARE_ORDER
from deployments.middleware import (
    AccessLogMiddleware,
    AuthenticateMiddleware,
    ProblemMiddleware,
    RequestIdMiddleware,
    valid_request_id,
)
from deployments.ratelimit import RateLimitMiddleware
from tests.unit.deployments.api.conftest import Api, api_settings, running_api


def test_the_middleware_order_is_pinned(api: Api) -> None:
    expected = [RequestIdMiddleware, AccessLogMiddleware, ProblemMiddleware, AuthenticateMiddleware, RateLimitMiddleware]
    assert list(MIDDLEWARE_ORDER) == expected
    assert [m.cls for m in api.app.user_middleware] == expected  # outermost first


def test_request_ids_are_validated() -> None:
    assert valid_request_id("a" * 128) and valid_request_id("req-1.2_X")
    for bad in ("", "a" * 129, "has space", "new\nline", "semi;colon", None):
        assert not valid_request_id(bad)


async def test_a_valid_request_id_is_kept_and_a_bad_one_replaced(api: Api) -> None:
    kept = await api.get("/health", headers={"x-request-id": "client-chosen.1"})
    assert kept.headers["x-request-id"] == "client-chosen.1"
    replaced = await api.get("/health", headers={"x-request-id": "x" * 200})
    assert valid_request_id(replaced.headers["x-request-id"]) and replaced.headers["x-request-id"] != "x" * 200
    assert len({(await api.get("/health")).headers["x-request-id"] for _ in range(3)}) == 3


async def test_one_access_log_event_per_request_with_its_context(api: Api, log_events: list[dict[str, Any]]) -> None:
    await api.get("/v1/moments", user="logged-user", headers={"x-request-id": "log-1"})
    await api.get("/nowhere", headers={"x-request-id": "log-2"})
    access = [e for e in log_events if e["event"] == "http.request"]
    assert [e["request_id"] for e in access] == ["log-1", "log-2"]
    first, second = access
    assert first["user_id"] == "logged-user" and first["route"] == "/v1/moments" and first["status"] == 200
    assert isinstance(first["duration_ms"], float) and first["method"] == "GET"
    assert second["status"] == 404 and second["route"] == "<unmatched>" and second["user_id"] is None


async def test_requests_stopped_by_the_outer_layers_are_still_logged_and_labelled(
    api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer, log_events: list[dict[str, Any]]
) -> None:
    settings = api_settings(api_dsn, rate_limits={"policies": {"public": {"limit": 1, "burst": 0}}})
    async with running_api(settings, signing_key, jwks_server.url) as api:
        await api.get("/v1/moments/s2e_1")  # 401 (public limit spent)
        limited = await api.get("/v1/moments/s2e_1", headers={"x-request-id": "rl-1"})
        metrics = (await api.get("/metrics", service=True)).text
    assert limited.status_code == 429 and limited.headers["x-request-id"] == "rl-1"
    assert limited.json()["request_id"] == "rl-1" and limited.json()["instance"] == "/v1/moments/s2e_1"
    event = next(e for e in log_events if e["event"] == "http.request" and e["request_id"] == "rl-1")
    assert event["status"] == 429 and event["route"] == "/v1/moments/{moment_id}"
    assert 'route="/v1/moments/{moment_id}",status="429"' in metrics
    assert 'oof_auth_failures_total{reason="token_missing"' in metrics

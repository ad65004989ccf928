"""deployments.ratelimit.middleware: 429 problem+json, RateLimit fields on success, pass-through."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Scope

from core.settings import RateLimitPolicy, RateLimitSettings
from deployments.ratelimit.client_ip import client_ip, parse_networks
from deployments.ratelimit.gcra import Decision
from deployments.ratelimit.limiter import RateLimiter
from deployments.ratelimit.middleware import RateKey, RateLimitMiddleware

TRUSTED = parse_networks(["127.0.0.0/8"])


def classify(scope: Scope) -> RateKey | None:
    if scope["path"] == "/health":
        return None
    headers = dict(scope["headers"])
    xff = headers.get(b"x-forwarded-for", b"").decode("latin-1") or None
    return RateKey("public", client_ip(scope["client"][0], xff, TRUSTED))


async def hello(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("hi")


async def own_limit(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("hi", headers={"RateLimit": '"inner";r=1;t=1'})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = RateLimitSettings(policies={"public": RateLimitPolicy(limit=2, window_s=60, key="ip")})
    app = Starlette(routes=[Route("/hello", hello), Route("/health", hello), Route("/own", own_limit)])
    wrapped = RateLimitMiddleware(app, RateLimiter(settings, None), classify)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://test") as http:
        yield http


async def test_allowed_responses_carry_ratelimit_fields(client: httpx.AsyncClient) -> None:
    response = await client.get("/hello")

    assert response.status_code == 200 and response.text == "hi"
    assert response.headers["ratelimit-policy"] == '"public";q=2;w=60'
    assert response.headers["ratelimit"] == '"public";r=1;t=30'
    assert "retry-after" not in response.headers


async def test_over_budget_gets_a_problem_429(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await client.get("/hello")).status_code == 200

    response = await client.get("/hello")

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "30"
    assert response.headers["ratelimit"] == '"public";r=0;t=30'
    body = json.loads(response.content)
    assert body["type"] == "https://oof.dev/problems/rate-limited"
    assert body["status"] == 429 and body["title"]
    assert body["violated-policies"] == ["public"]
    assert "30 s" in body["detail"]


async def test_subjects_come_from_classify(client: httpx.AsyncClient) -> None:
    # The test transport's peer is 127.0.0.1, a trusted proxy here, so XFF names the client.
    for _ in range(2):
        await client.get("/hello", headers={"X-Forwarded-For": "198.51.100.1"})

    other = await client.get("/hello", headers={"X-Forwarded-For": "198.51.100.2"})
    same = await client.get("/hello", headers={"X-Forwarded-For": "198.51.100.1"})

    assert (other.status_code, same.status_code) == (200, 429)


async def test_unclassified_requests_pass_untouched(client: httpx.AsyncClient) -> None:
    responses = [await client.get("/health") for _ in range(5)]

    assert {r.status_code for r in responses} == {200}
    assert "ratelimit" not in responses[0].headers


async def test_fields_set_by_the_route_join_the_list(client: httpx.AsyncClient) -> None:
    response = await client.get("/own")

    assert response.headers.get_list("ratelimit") == ['"inner";r=1;t=1', '"public";r=1;t=30']


# --- several keys per request: the caller's policy and route classes -----------------------------


class CountingLimiter(RateLimiter):
    def __init__(self, settings: RateLimitSettings) -> None:
        super().__init__(settings, None)
        self.checked: list[str] = []

    async def check(self, policy_name: str, subject: str) -> Decision:
        self.checked.append(policy_name)
        return await super().check(policy_name, subject)


def classify_many(scope: Scope) -> list[RateKey]:
    own = RateKey("public", scope["client"][0])
    return [own, RateKey("cards", "them")] if scope["path"].startswith("/cards/") else [own]


@pytest.fixture
def limiter() -> CountingLimiter:
    return CountingLimiter(RateLimitSettings(policies={
        "public": RateLimitPolicy(limit=4, window_s=60, key="ip"),
        "cards": RateLimitPolicy(limit=2, window_s=60, key="user"),
    }))


@pytest.fixture
async def many(limiter: CountingLimiter) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Route("/hello", hello), Route("/cards/{n}", own_limit)])
    wrapped = RateLimitMiddleware(app, limiter, classify_many)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://test") as http:
        yield http


async def test_every_key_is_reported_on_an_allowed_response(many: httpx.AsyncClient) -> None:
    response = await many.get("/cards/1")

    assert response.status_code == 200
    assert response.headers.get_list("ratelimit-policy") == ['"public";q=4;w=60', '"cards";q=2;w=60']
    assert response.headers.get_list("ratelimit") == ['"inner";r=1;t=1', '"public";r=3;t=15', '"cards";r=1;t=30']


async def test_the_route_class_refuses_and_the_429_names_it_alone(
    many: httpx.AsyncClient, limiter: CountingLimiter
) -> None:
    for _ in range(2):
        assert (await many.get("/cards/1")).status_code == 200

    refused = await many.get("/cards/2")

    assert refused.status_code == 429
    assert refused.headers["ratelimit-policy"] == '"cards";q=2;w=60'
    assert refused.headers["ratelimit"] == '"cards";r=0;t=30'
    assert refused.headers["retry-after"] == "30"
    assert json.loads(refused.content)["violated-policies"] == ["cards"]
    assert limiter.checked == ["public", "cards"] * 3
    # The caller's own policy was charged for the refused request too: one left, and other routes use it.
    hello_response = await many.get("/hello")
    assert hello_response.status_code == 200 and hello_response.headers["ratelimit"] == '"public";r=0;t=15'


async def test_a_refusal_by_an_earlier_key_leaves_the_later_ones_uncharged(
    many: httpx.AsyncClient, limiter: CountingLimiter
) -> None:
    for _ in range(4):
        assert (await many.get("/hello")).status_code == 200

    refused = await many.get("/cards/1")

    assert refused.status_code == 429 and json.loads(refused.content)["violated-policies"] == ["public"]
    assert refused.headers["ratelimit-policy"] == '"public";q=4;w=60'
    assert limiter.checked == ["public"] * 5


async def test_an_empty_list_of_keys_is_not_limited(limiter: CountingLimiter) -> None:
    app = Starlette(routes=[Route("/hello", hello)])
    wrapped = RateLimitMiddleware(app, limiter, lambda _scope: [])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://test") as http:
        response = await http.get("/hello")

    assert response.status_code == 200 and "ratelimit" not in response.headers and limiter.checked == []

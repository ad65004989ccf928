"""deployments.ratelimit against a real Redis: shared budgets, atomicity, outage and recovery, route classes.

Needs Redis at `OOF_TEST_REDIS_URL` (default redis://127.0.0.1:6379/0), the tests fail without it.
Every test writes under its own random key prefix and deletes it afterwards. Outages are
simulated with a closed port or a TCP proxy owned by the test; the server is never stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from structlog.testing import capture_logs

from core.settings import RateLimitPolicy, RateLimitSettings, load_settings
from deployments.auth import Principal
from deployments.compose import rate_classifier
from deployments.middleware import AUTH_SCOPE_KEY, AuthOutcome
from deployments.ratelimit import RateLimitMiddleware
from deployments.ratelimit.limiter import RateLimiter
from tests.tcp_proxy import TcpProxy

REDIS_URL = os.environ.get("OOF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

ClientFactory = Callable[..., Redis]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture(loop_scope="session")
async def clients() -> AsyncIterator[ClientFactory]:
    """Build Redis clients (closed afterwards); fails when the test Redis is unreachable."""
    probe = Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        await probe.ping()
    except (RedisError, OSError) as exc:
        pytest.fail(f"Redis not reachable at {REDIS_URL}: {exc} (start it; see README)", pytrace=False)
    finally:
        await probe.aclose()
    made: list[Redis] = []

    def make(url: str = REDIS_URL) -> Redis:
        client = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def prefix(clients: ClientFactory) -> AsyncIterator[str]:
    prefix = f"oof:rl:test:{secrets.token_hex(6)}"
    yield prefix
    cleaner = clients()
    keys = [key async for key in cleaner.scan_iter(match=f"{prefix}:*")]
    if keys:
        await cleaner.delete(*keys)


def policies(limit: int, burst: int = 0, window_s: int = 60) -> RateLimitSettings:
    return RateLimitSettings(policies={"p": RateLimitPolicy(limit=limit, window_s=window_s, burst=burst, key="ip")})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def allowed(checks: list[Awaitable[object]]) -> list[bool]:
    return [decision.allowed for decision in await asyncio.gather(*checks)]  # type: ignore[attr-defined]


async def test_exact_boundary_and_key_layout(clients: ClientFactory, prefix: str) -> None:
    redis = clients()
    limiter = RateLimiter(policies(limit=5), redis, key_prefix=prefix)

    decisions = [await limiter.check("p", "198.51.100.1") for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert decisions[5].retry_after_s == pytest.approx(12.0, abs=0.5)
    assert limiter.headers(decisions[5])["Retry-After"] == "12"
    key = f"{prefix}:p:198.51.100.1"
    assert 59_000 < await redis.pttl(key) <= 60_000
    assert limiter.backend == "redis" and not limiter.degraded


async def test_two_replicas_share_one_budget(clients: ClientFactory, prefix: str) -> None:
    # Arrange: two "replicas", each with its own connection, 5/min + 2 burst -> 7 at once
    replicas = [RateLimiter(policies(limit=5, burst=2), clients(), key_prefix=prefix) for _ in range(2)]

    # Act: alternate between them
    decisions = [await replicas[n % 2].check("p", "alice") for n in range(8)]

    # Assert
    assert [d.allowed for d in decisions] == [True] * 7 + [False]
    assert decisions[6].remaining == 0


async def test_concurrent_checks_are_atomic(clients: ClientFactory, prefix: str) -> None:
    replicas = [RateLimiter(policies(limit=10), clients(), key_prefix=prefix, timeout_s=5) for _ in range(2)]

    results = await allowed([replicas[n % 2].check("p", "bob") for n in range(50)])

    assert results.count(True) == 10


async def test_redis_down_falls_back_to_memory(clients: ClientFactory, prefix: str) -> None:
    dead = clients(f"redis://127.0.0.1:{closed_port()}/0")
    limiter = RateLimiter(policies(limit=2), dead, key_prefix=prefix, timeout_s=0.5, clock=FakeClock())

    with capture_logs() as logs:
        decisions = [await limiter.check("p", "carol") for _ in range(3)]

    assert [d.allowed for d in decisions] == [True, True, False]
    assert (limiter.backend, limiter.degraded) == ("memory", True)
    assert [entry["event"] for entry in logs] == ["ratelimit.redis_unavailable"]


async def test_outage_and_recovery_through_a_proxy(clients: ClientFactory, prefix: str) -> None:
    # Arrange: Redis reached through a proxy the test can cut
    host, port = "127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(host, port)
    await proxy.start()
    clock = FakeClock()
    limiter = RateLimiter(
        policies(limit=3), clients(f"redis://127.0.0.1:{proxy.port}/0"),
        key_prefix=prefix, timeout_s=0.5, cooldown_s=5.0, clock=clock,
    )
    try:
        assert (await limiter.check("p", "dave")).allowed
        assert limiter.backend == "redis"

        # Act 1: cut the link
        await proxy.stop()
        with capture_logs() as outage:
            during = [await limiter.check("p", "dave") for _ in range(4)]

        # Assert 1: the memory store limits on its own (a fresh budget of 3), degraded reported
        assert [d.allowed for d in during] == [True, True, True, False]
        assert (limiter.backend, limiter.degraded) == ("memory", True)
        assert [entry["event"] for entry in outage] == ["ratelimit.redis_unavailable"]

        # Act 2: restore the link; Redis is retried once the cooldown has passed
        await proxy.start()
        clock.now += 5.0
        with capture_logs() as recovery:
            after = [await limiter.check("p", "dave") for _ in range(3)]

        # Assert 2: back on Redis, whose budget still holds the one request made before the cut
        assert (limiter.backend, limiter.degraded) == ("redis", False)
        assert [d.allowed for d in after] == [True, True, False]
        assert [entry["event"] for entry in recovery] == ["ratelimit.redis_recovered"]
    finally:
        await proxy.stop()


# --- a route class from settings, through the API's classifier and middleware ----------------------

CARDS_CONFIG = """
rate_limits:
  policies:
    user: {limit: 100, window_s: 3600, burst: 0}
    cards: {limit: 3, window_s: 60, burst: 0, key: user}
  routes:
    cards: ["GET /v1/cards/*"]
"""


class UserFromHeader:
    """Stands in for AuthenticateMiddleware: `x-test-user: alice` makes the request alice's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = dict(scope.get("headers", ())).get(b"x-test-user")
        if user:
            scope = {**scope, AUTH_SCOPE_KEY: AuthOutcome(principal=Principal("user", user.decode()))}
        await self.app(scope, receive, send)


async def ok(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def test_a_route_class_from_settings_limits_its_routes_only(
    clients: ClientFactory, prefix: str, tmp_path: Path
) -> None:
    # Arrange: the operator's config file, the API's classifier, the limiter on Redis
    config = tmp_path / "oof.yaml"
    config.write_text(CARDS_CONFIG, encoding="utf-8")
    limits = load_settings({}, [config]).rate_limits
    redis = clients()
    limiter = RateLimiter(limits, redis, key_prefix=prefix)
    app = Starlette(routes=[Route("/v1/cards/moment/{name}", ok), Route("/v1/moments", ok)])
    stack = UserFromHeader(RateLimitMiddleware(app, limiter, rate_classifier(limits)))
    alice, bob = {"x-test-user": "alice"}, {"x-test-user": "bob"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack), base_url="http://api.test") as http:
        # Act: alice spends her cards budget exactly, then asks once more; then other routes and users
        cards = [await http.get(f"/v1/cards/moment/m{n}.png", headers=alice) for n in range(4)]
        moments = await http.get("/v1/moments", headers=alice)
        bobs_card = await http.get("/v1/cards/moment/m0.png", headers=bob)

    # Assert: three pass (both policies reported), the fourth is refused by `cards`
    assert [r.status_code for r in cards] == [200, 200, 200, 429]
    assert cards[0].headers.get_list("ratelimit-policy") == ['"user";q=100;w=3600', '"cards";q=3;w=60']
    assert [r.headers.get_list("ratelimit")[1] for r in cards[:3]] == [
        '"cards";r=2;t=20', '"cards";r=1;t=20', '"cards";r=0;t=20',
    ]
    refused = cards[3]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers.get_list("ratelimit-policy") == ['"cards";q=3;w=60']
    assert refused.headers["ratelimit"] == '"cards";r=0;t=20'
    assert 19 <= int(refused.headers["retry-after"]) <= 20
    assert json.loads(refused.content)["violated-policies"] == ["cards"]
    # Another route is unaffected: only alice's `user` budget, which the refused request also paid
    assert moments.status_code == 200
    assert moments.headers.get_list("ratelimit-policy") == ['"user";q=100;w=3600']
    assert moments.headers["ratelimit"] == '"user";r=95;t=36'
    # Another user has a budget of their own
    assert bobs_card.status_code == 200 and bobs_card.headers.get_list("ratelimit")[1] == '"cards";r=2;t=20'
    # The budgets live in Redis under the policy and the user id
    assert 59_000 < await redis.pttl(f"{prefix}:cards:alice") <= 60_000
    assert await redis.exists(f"{prefix}:user:alice", f"{prefix}:cards:bob") == 2


"""The API built with `build_app`, served in-process (httpx `ASGITransport`, no Ray) over real PostgreSQL and Redis.

`api` is one session-wide app over a migrated throwaway database; tests that need other
settings (tight rate limits, Redis on a closed port) build their own with `running_api`.
Each session uses its own Redis key namespace, so reruns never share rate-limit state.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
import structlog
from fastapi import FastAPI
from solders.pubkey import Pubkey
from structlog.testing import LogCapture

from core.models import Moment, MomentKind, MomentStatus, moment_id
from core.settings import Settings
from deployments.app import build_app
from deployments.auth import JwksCache, service_authorization
from deployments.auth.testing import (
    TEST_ENVIRONMENT_ID,
    JwksServer,
    RsaTestKey,
    dynamic_claims,
    jwks_document,
    make_rsa_key,
    sign_token,
)
from deployments.compose import Deps, build_deps
from streams.storage import upsert_moments
from tests.integration.conftest import database_factory  # noqa: F401 - re-exported fixture

REDIS_URL = "redis://127.0.0.1:6379/0"
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
SERVICE_ID = "ops"
SERVICE_SECRET = "test-service-secret-0123456789abcdef"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
_REQUEST_NONCES = itertools.count()


def new_wallet() -> str:
    return str(Pubkey.new_unique())


def make_moment(
    wallet: str, detected_at: int, *, kind: MomentKind = MomentKind.S2E, severity: str = "0.5",
    usd: str = "100", sig: str | None = None,
) -> Moment:
    sig = sig or secrets.token_hex(16)
    return Moment(
        id=moment_id(kind, wallet, USDC, sig), kind=kind, wallet=wallet, mint=USDC,
        severity=Decimal(severity), pct=Decimal("0.4"), usd_value=Decimal(usd),
        window_start=detected_at - 60, window_end=detected_at + 3600, sig_ref=sig, slot_ref=detected_at,
        status=MomentStatus.OPEN, detected_at=detected_at, updated_at=detected_at, explain={"p_exit": Decimal("1.5")},
    )


def api_settings(dsn: str, **sections: Any) -> Settings:
    base: dict[str, Any] = {
        "database": {"url": dsn, "pool_min": 1, "pool_max": 8},
        "redis": {"url": REDIS_URL},
        "auth": {"dynamic_environment_id": TEST_ENVIRONMENT_ID, "service_secrets": {SERVICE_ID: [SERVICE_SECRET]}},
        "solana": {"rpc_http_url": "http://127.0.0.1:9/"},  # nothing listens: an optional dependency down
        "rate_limits": {"policies": {"public": {"limit": 10_000}, "user": {"limit": 10_000}}},
    }
    for name, value in sections.items():
        base[name] = {**base.get(name, {}), **value}
    return Settings(**base)


@dataclass
class Api:
    app: FastAPI
    deps: Deps
    client: httpx.AsyncClient
    key: RsaTestKey

    def user(self, sub: str, **claims: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {sign_token(dynamic_claims(sub=sub, **claims), self.key)}"}

    def service(self, method: str, url: str, body: bytes = b"") -> dict[str, str]:
        target = httpx.URL(url).raw_path.decode()
        ts = int(time.time())
        return {"authorization": service_authorization(SERVICE_ID, SERVICE_SECRET, method, target, body, ts)}

    async def get(self, url: str, *, user: str | None = None, service: bool = False, **kw: Any) -> httpx.Response:
        if kw.get("params"):
            url = str(httpx.URL(url, params=kw.pop("params")))
        headers = dict(kw.pop("headers", {}))
        if user is not None:
            headers.update(self.user(user))
        if service:
            # A service token is single use, and identical requests signed in the same second
            # are identical tokens: an ignored `_n` query parameter keeps each request distinct.
            url = f"{url}{'&' if '?' in url else '?'}_n={next(_REQUEST_NONCES)}"
            headers.update(self.service("GET", url))
        return await self.client.get(url, headers=headers, **kw)

    async def add_moments(self, *moments: Moment) -> None:
        async with self.deps.pool.acquire() as conn:
            await upsert_moments(conn, list(moments))

    async def link(self, user_id: str, *wallets: str) -> None:
        async with self.deps.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO wallet_links (user_id, wallet) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [(user_id, w) for w in wallets],
            )


@contextmanager
def ray_keeps_its_hands_off_logging() -> Iterator[None]:
    """Undo what importing Ray does to the stdlib loggers `ray` and `ray.serve` (propagate=False, own handlers).

    Otherwise every later test that routes Ray's records through `configure_logging` (as
    tests/unit/deployments/test_logging.py does) depends on whether Ray was imported first.
    """
    loggers = [logging.getLogger(name) for name in ("ray", "ray.serve")]
    saved = [(lg.propagate, list(lg.handlers), lg.level) for lg in loggers]
    try:
        yield
    finally:
        for lg, (propagate, handlers, level) in zip(loggers, saved, strict=True):
            lg.propagate, lg.handlers, lg.level = propagate, handlers, level


@asynccontextmanager
async def running_api(
    settings: Settings, key: RsaTestKey, jwks_url: str, *, namespace: str | None = None, **options: Any
) -> AsyncIterator[Api]:
    """An app of its own; a Redis `namespace` shared by two of them makes them replicas of one cluster."""
    namespace = namespace or f"oof-test-{secrets.token_hex(4)}:"
    deps = await build_deps(settings, jwks=JwksCache(jwks_url), namespace=namespace, **options)
    app = build_app(settings, deps)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield Api(app, deps, client, key)
    finally:
        await deps.aclose()


@pytest.fixture(scope="session")
def signing_key() -> RsaTestKey:
    return make_rsa_key("api-test-key")


@pytest.fixture(scope="session")
def jwks_server(signing_key: RsaTestKey) -> Iterator[JwksServer]:
    with JwksServer(jwks_document(signing_key)) as server:
        yield server


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def api_dsn(database_factory: Any) -> str:  # noqa: F811 - the re-exported fixture
    return await database_factory(migrated=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def api(api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer, tmp_path_factory: Any) -> AsyncIterator[Api]:
    settings = api_settings(api_dsn)
    async with running_api(settings, signing_key, jwks_server.url, cards_dir=tmp_path_factory.mktemp("cards")) as api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def clean(api: Api) -> Api:
    """The shared app over empty moments and wallet_links tables."""
    async with api.deps.pool.acquire() as conn:
        await conn.execute("TRUNCATE moments, wallet_links")
    api.deps.cache.clear_local()
    return api


@pytest.fixture
def log_events() -> Iterator[list[dict[str, Any]]]:
    """structlog events of the test, with context variables (request_id, user_id) merged in."""
    capture = LogCapture()
    previous = structlog.get_config()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    try:
        yield capture.entries
    finally:
        structlog.configure(**previous)

"""One Ray instance and one deployed API for all of tests/e2e, shared by every e2e test file.

Package-scoped: Ray and Serve stop when the last e2e test is done, so the rest of the suite
(the `oof run` tests start Ray clusters of their own) does not share two cores with an idle one.

Fixtures, cheapest first (Ray start-up is seconds, so nothing here is ever per test):

- `ray_cluster` — `ray.init(num_cpus=2, include_dashboard=False)`, once. Use it alone for
  actor tests. Torn down with `ray.shutdown()` only: it also kills Serve and its HAProxy,
  while `serve.shutdown()` with the HAProxy data plane waits out a 30 s timeout (docs/SERVE.md).
- `e2e_dsn` — a migrated throwaway database (the integration `database_factory`).
- `api_server` — the API deployed with `configs/serve.yaml` (same data plane as production)
  on a free port on 127.0.0.1, with **two replicas** sharing Redis, user auth against a test
  RSA key whose JWKS is served over HTTPS by this process, and HMAC service auth (service
  `e2e` with two live secrets, as during a rotation).
  `api_server.user_headers(sub)` and `.service_request(method, path)` sign requests.

`OOF_E2E_DATA_PLANE=default` runs the same suite on Serve's Python proxy instead of the shipped
HAProxy data plane (RAY_NOTES: test both).

Rules for tests sharing `api_server`: use your own user ids (`unique_user()`): the `user`
rate limit is deliberately small (`USER_LIMIT` per hour, no burst) so the 429 test is cheap,
and counts persist in Redis. Anonymous requests and refused credentials share the `public`
policy (one client IP), raised here so the attack lists of test_auth_on_serve.py fit.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from deployments.auth import service_authorization
from deployments.auth.testing import (
    TEST_ENVIRONMENT_ID,
    RsaTestKey,
    dynamic_claims,
    jwks_document,
    make_rsa_key,
    sign_token,
)
from tests.e2e.tls_jwks import TlsJwksServer
from tests.integration.conftest import database_factory  # noqa: F401 - re-exported fixture

REDIS_URL = "redis://127.0.0.1:6379/0"
USER_LIMIT = 30
USER_WINDOW_S = 3600  # one request back per 2 min: nothing refills while a test runs
SERVICE_ID = "e2e"
SERVICE_SECRET = secrets.token_hex(16)
SERVICE_SECRET_NEXT = secrets.token_hex(16)  # the second live secret of a rotation
_NONCES = itertools.count()


@contextmanager
def ray_keeps_its_hands_off_logging() -> Iterator[None]:
    """Undo what `import ray` / `ray.init` do to the stdlib `ray` loggers (propagate=False, own handlers).

    Otherwise later tests that route Ray's records through `configure_logging`
    (tests/unit/deployments/test_logging.py) would depend on whether Ray was imported first.
    """
    loggers = [logging.getLogger(name) for name in ("ray", "ray.serve")]
    saved = [(lg.propagate, list(lg.handlers), lg.level) for lg in loggers]
    try:
        yield
    finally:
        for lg, (propagate, handlers, level) in zip(loggers, saved, strict=True):
            lg.propagate, lg.handlers, lg.level = propagate, handlers, level


with ray_keeps_its_hands_off_logging():
    import ray

    from deployments import serve_app


def unique_user(label: str) -> str:
    """A user id no earlier run used (rate-limit state outlives a run by up to a minute)."""
    return f"{label}-{secrets.token_hex(4)}"


class _RetryIdempotent(httpx.AsyncHTTPTransport):
    """Retry a GET/HEAD once when the server closed a reused connection without answering.

    Serve reloads HAProxy when its targets change, and the old process closes idle keep-alive
    connections: a request sent on one at that moment gets no response. Clients may retry an
    idempotent request then (RFC 9112 section 9.3.1), as browsers do."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.RemoteProtocolError:
            if request.method not in ("GET", "HEAD"):
                raise
            return await super().handle_async_request(request)


def serve_client(base_url: str, *, timeout: float = 10) -> httpx.AsyncClient:
    """An HTTP client of the Serve port (see `_RetryIdempotent`)."""
    return httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=timeout, transport=_RetryIdempotent())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[None]:
    with ray_keeps_its_hands_off_logging():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="oof-e2e")
    try:
        yield
    finally:
        with ray_keeps_its_hands_off_logging():
            ray.shutdown()


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def e2e_dsn(database_factory: Any) -> str:  # noqa: F811 - the re-exported fixture
    return await database_factory(migrated=True)


@dataclass(frozen=True)
class ApiServer:
    base_url: str
    dsn: str
    key: RsaTestKey
    jwks: TlsJwksServer
    env: dict[str, str]  # the replicas' environment: another app on this Serve starts from it

    def user_headers(self, sub: str, **claims: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {sign_token(dynamic_claims(sub=sub, **claims), self.key)}"}

    def service_request(
        self, method: str, path: str, body: bytes = b"", *, secret: str = SERVICE_SECRET, ts: int | None = None
    ) -> tuple[str, dict[str, str]]:
        """(path with a unique `_n`, headers): service tokens are single use, so identical requests differ.

        `secret`: either live one (rotation); `ts`: the token's time instead of now (stale tokens).
        """
        path = f"{path}{'&' if '?' in path else '?'}_n={next(_NONCES)}"
        token = service_authorization(SERVICE_ID, secret, method, path, body, int(time.time()) if ts is None else ts)
        return path, {"authorization": token}


def replica_env(dsn: str, jwks: TlsJwksServer) -> dict[str, str]:
    """The replicas' settings. They keep no analyze runner: a test that runs jobs starts its own
    (tests/e2e/test_analyze.py) or deploys an API that keeps one (test_analyze_on_serve.py)."""
    return {
        "DATABASE_URL": dsn,
        "REDIS_URL": REDIS_URL,
        "DYNAMIC_ENVIRONMENT_ID": TEST_ENVIRONMENT_ID,
        "OOF_AUTH__JWKS_URL": jwks.url,
        "OOF_AUTH__SERVICE_SECRETS": orjson.dumps({SERVICE_ID: [SERVICE_SECRET, SERVICE_SECRET_NEXT]}).decode(),
        "OOF_RATE_LIMITS__POLICIES__PUBLIC__LIMIT": "10000",
        "OOF_RATE_LIMITS__POLICIES__USER__LIMIT": str(USER_LIMIT),
        "OOF_RATE_LIMITS__POLICIES__USER__BURST": "0",
        "OOF_RATE_LIMITS__POLICIES__USER__WINDOW_S": str(USER_WINDOW_S),
        "OOF_SOLANA__RPC_HTTP_URL": "http://127.0.0.1:9/",  # never the real mainnet from a test
        "OOF_ANALYZE__ENABLED": "false",
        "OOF_API__METRICS_SHARE_S": "0.5",  # a replica's counts reach the other's /metrics within a test's patience
        "SSL_CERT_FILE": str(jwks.ca_file),
        "OOF_CONFIG": "",  # the developer's extra config file must not leak in
    }


def _controller_env() -> dict[str, str] | None:
    """None: the controller options of configs/serve.yaml; else those minus the HAProxy switches."""
    if os.environ.get("OOF_E2E_DATA_PLANE", "config") != "default":
        return None
    from deployments.commands.serve import FAST_DATA_PLANE_VARS

    config = serve_app.load_serve_config()
    configured = (config.controller_options.runtime_env or {}).get("env_vars", {}) if config.controller_options else {}
    return {k: v for k, v in configured.items() if k not in FAST_DATA_PLANE_VARS}


@pytest.fixture(scope="package")
def api_server(ray_cluster: None, e2e_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    key = make_rsa_key("e2e-key")
    with TlsJwksServer(jwks_document(key), Path(tmp_path_factory.mktemp("jwks"))) as jwks:
        env = replica_env(e2e_dsn, jwks)
        with ray_keeps_its_hands_off_logging():
            base_url = serve_app.run(
                serve_app.load_serve_config(),
                http_host="127.0.0.1",
                http_port=_free_port(),
                overrides={
                    "num_replicas": 2,
                    "ray_actor_options": {"runtime_env": {"env_vars": env}},
                },
                controller_env=_controller_env(),
            )
        yield ApiServer(base_url=base_url, dsn=e2e_dsn, key=key, jwks=jwks, env=env)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


__all__ = ["serve_client", "ApiServer", "USER_LIMIT", "USER_WINDOW_S", "replica_env", "unique_user", "ray_keeps_its_hands_off_logging"]

"""Auth test fixtures: session-wide RSA keys (2048-bit keys are slow to make), a JWKS server, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from deployments.auth.testing import JwksServer, RsaTestKey, jwks_document, make_rsa_key


class FakeClock:
    """Wall-clock seconds that only move when told; starts at the real time so token `exp` stays meaningful."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def signing_key() -> RsaTestKey:
    return make_rsa_key("dyn-key-1")


@pytest.fixture(scope="session")
def rotated_key() -> RsaTestKey:
    return make_rsa_key("dyn-key-2")


@pytest.fixture(scope="session")
def stranger_key() -> RsaTestKey:
    """A valid RSA key Dynamic never published."""
    return make_rsa_key("ghost-key")


@pytest.fixture
def jwks_server(signing_key: RsaTestKey) -> Iterator[JwksServer]:
    with JwksServer(jwks_document(signing_key)) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a proxy from the environment must not intercept 127.0.0.1.
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    import time

    return FakeClock(time.time())

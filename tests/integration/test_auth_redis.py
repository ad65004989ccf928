"""Auth against a real Redis: the JWKS shared between replicas, HMAC nonces shared, and life without Redis.

Redis is `OOF_TEST_REDIS_URL` (default redis://127.0.0.1:6379/0). Every key lives under a
per-run prefix and is deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from core.errors import AuthError
from deployments.auth import HmacServiceAuth, JwksCache, service_authorization
from deployments.auth.testing import JwksServer, RsaTestKey, jwks_document, make_rsa_key

REDIS_URL = os.environ.get("OOF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NOW = 1_750_000_000
SECRET = "ingest-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def signing_key() -> RsaTestKey:
    return make_rsa_key("dyn-key-1")


@pytest.fixture
def jwks_server(signing_key: RsaTestKey) -> Iterator[JwksServer]:
    with JwksServer(jwks_document(signing_key)) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def prefix() -> str:
    return f"oof:test:{secrets.token_hex(6)}:"


@pytest_asyncio.fixture(loop_scope="session")
async def redis(prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, socket_timeout=2.0)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        pytest.fail(f"Redis not reachable at {REDIS_URL}: {exc} (start it; see README)", pytrace=False)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def dead_redis() -> AsyncIterator[Redis]:
    """A client pointed at a port nobody listens on, failing fast (no retries)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


async def test_a_second_replica_uses_the_jwks_cached_in_redis(
    redis: Redis, prefix: str, http: httpx.AsyncClient, jwks_server: JwksServer, signing_key: RsaTestKey
) -> None:
    first = JwksCache(jwks_server.url, ttl_s=300, redis=redis, http=http, key_prefix=f"{prefix}jwks:")
    assert await first.get_key(signing_key.kid) is not None
    assert jwks_server.fetches == 1
    assert 290 <= await redis.ttl(first.redis_key) <= 300

    second = JwksCache(jwks_server.url, ttl_s=300, redis=redis, http=http, key_prefix=f"{prefix}jwks:")
    key = await second.get_key(signing_key.kid)

    assert key is not None and jwks_server.fetches == 1
    health = second.health()
    assert (health.source, health.redis, health.status) == ("redis", "ok", "ok")
    assert health.age_s is not None and health.age_s < 60


async def test_hmac_nonces_are_shared_between_replicas(redis: Redis, prefix: str) -> None:
    replica_a = HmacServiceAuth({"ingest": [SECRET]}, redis=redis, key_prefix=f"{prefix}hmac:")
    replica_b = HmacServiceAuth({"ingest": [SECRET]}, redis=redis, key_prefix=f"{prefix}hmac:")
    value = service_authorization("ingest", SECRET, "POST", "/v1/admin/track", b"{}", NOW)

    assert await replica_a.authenticate(value, "POST", "/v1/admin/track", b"{}", NOW) is not None
    with pytest.raises(AuthError) as caught:
        await replica_b.authenticate(value, "POST", "/v1/admin/track", b"{}", NOW + 5)

    assert caught.value.reason == "token_replayed"
    nonce_key = f"{prefix}hmac:ingest:{value.rsplit('.', 1)[1]}"
    assert 590 <= await redis.ttl(nonce_key) <= 600
    assert replica_b.health()["nonce_store"] == "redis"


async def test_without_redis_the_in_process_fallbacks_serve(
    dead_redis: Redis, http: httpx.AsyncClient, jwks_server: JwksServer, signing_key: RsaTestKey
) -> None:
    cache = JwksCache(jwks_server.url, ttl_s=300, redis=dead_redis, http=http)
    assert await cache.get_key(signing_key.kid) is not None
    assert await cache.get_key(signing_key.kid) is not None
    health = cache.health()
    assert (health.redis, health.status, jwks_server.fetches) == ("unavailable", "ok", 1)

    auth = HmacServiceAuth({"ingest": [SECRET]}, redis=dead_redis)
    value = service_authorization("ingest", SECRET, "GET", "/v1/admin/stats", b"", NOW)
    assert await auth.authenticate(value, "GET", "/v1/admin/stats", b"", NOW) is not None
    with pytest.raises(AuthError) as caught:
        await auth.authenticate(value, "GET", "/v1/admin/stats", b"", NOW)
    assert caught.value.reason == "token_replayed"
    report = auth.health()
    assert report["redis"]["state"] == "unavailable" and report["nonce_store"] == "memory (per replica)"
    assert "ConnectionError" in (report["redis"]["last_error"] or "")

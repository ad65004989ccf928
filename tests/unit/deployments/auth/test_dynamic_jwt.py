"""DynamicJwtAuth against a real JWKS served over HTTP: the happy path, the attack list, rotation, outages."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from core.errors import AuthError
from core.settings import AuthSettings
from deployments.auth import DynamicJwtAuth, JwksCache, JwksUnavailableError, Principal
from deployments.auth.testing import (
    TEST_ENVIRONMENT_ID,
    JwksServer,
    RsaTestKey,
    dynamic_claims,
    jwks_document,
    sign_token,
)
from tests.auth_attacks import (
    CLAIM_ATTACKS,
    FORGED_TOKENS,
    GARBAGE_TOKENS,
    ISSUER,
    REFUSED_BEFORE_KEY_LOOKUP,
    forged_tokens,
)

from .conftest import FakeClock

COOLDOWN_S = 30.0
TTL_S = 300.0

MakeAuth = Callable[..., Awaitable[tuple[DynamicJwtAuth, JwksCache]]]


@pytest_asyncio.fixture(loop_scope="session")
async def make_auth(http: httpx.AsyncClient, jwks_server: JwksServer, clock: FakeClock) -> AsyncIterator[MakeAuth]:
    caches: list[JwksCache] = []

    async def make(url: str | None = None, audience: tuple[str, ...] = ()) -> tuple[DynamicJwtAuth, JwksCache]:
        cache = JwksCache(
            url or jwks_server.url, ttl_s=TTL_S, http=http, refetch_cooldown_s=COOLDOWN_S, timeout_s=2.0, clock=clock
        )
        caches.append(cache)
        auth = DynamicJwtAuth(cache, issuer=ISSUER, environment_id=TEST_ENVIRONMENT_ID, audience=audience)
        return auth, cache

    yield make
    for cache in caches:
        await cache.aclose()


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def reason_of(auth: DynamicJwtAuth, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        await auth.authenticate(bearer(token))
    return caught.value.reason


async def test_valid_token_gives_a_user_principal(make_auth: MakeAuth, signing_key: RsaTestKey) -> None:
    auth, _ = await make_auth()
    claims = dynamic_claims(scope="user:basic wallet:sign")

    principal = await auth.authenticate(bearer(sign_token(claims, signing_key)))

    assert principal == Principal(kind="user", id=claims["sub"], scopes=frozenset({"user:basic", "wallet:sign"}))
    assert principal.claims["environment_id"] == TEST_ENVIRONMENT_ID


@pytest.mark.parametrize("header", [None, "", "   ", "Basic dXNlcjpwdw==", "OOF-HMAC svc.1.ab"])
async def test_no_bearer_token_is_not_ours(make_auth: MakeAuth, jwks_server: JwksServer, header: str | None) -> None:
    auth, _ = await make_auth()
    assert await auth.authenticate(header) is None
    assert jwks_server.fetches == 0


async def test_empty_bearer_is_token_missing(make_auth: MakeAuth) -> None:
    auth, _ = await make_auth()
    with pytest.raises(AuthError) as caught:
        await auth.authenticate("Bearer   ")
    assert caught.value.reason == "token_missing"


def _now() -> int:
    return int(time.time())


@pytest.mark.parametrize(("overrides", "reason"), CLAIM_ATTACKS.values(), ids=CLAIM_ATTACKS.keys())
async def test_claim_attacks_are_refused(
    make_auth: MakeAuth, signing_key: RsaTestKey, overrides: dict[str, Any], reason: str
) -> None:
    auth, _ = await make_auth()
    token = sign_token(dynamic_claims(**overrides), signing_key)
    assert await reason_of(auth, token) == reason


async def test_leeway_accepts_small_clock_skew(make_auth: MakeAuth, signing_key: RsaTestKey) -> None:
    auth, _ = await make_auth()
    token = sign_token(dynamic_claims(exp=_now() - 10, nbf=_now() + 10), signing_key)
    assert await auth.authenticate(bearer(token)) is not None


async def test_audience_is_checked_when_configured(make_auth: MakeAuth, signing_key: RsaTestKey) -> None:
    auth, _ = await make_auth(audience=("https://app.example.com", "https://oof.example"))
    assert await auth.authenticate(bearer(sign_token(dynamic_claims(), signing_key))) is not None
    wrong_audience = sign_token(dynamic_claims(aud="https://evil.example"), signing_key)
    assert await reason_of(auth, wrong_audience) == "audience_invalid"
    assert await reason_of(auth, sign_token(dynamic_claims(aud=None), signing_key)) == "audience_invalid"


@pytest.mark.parametrize("case", FORGED_TOKENS)
async def test_forged_tokens_are_refused(
    make_auth: MakeAuth, jwks_server: JwksServer, signing_key: RsaTestKey, stranger_key: RsaTestKey, case: str
) -> None:
    auth, _ = await make_auth()
    token, reason = forged_tokens(signing_key, stranger_key)[case]
    assert await reason_of(auth, token) == reason
    if reason in REFUSED_BEFORE_KEY_LOOKUP:  # `none` and HS/RS confusion never reach the JWKS
        assert jwks_server.fetches == 0


@pytest.mark.parametrize("token", GARBAGE_TOKENS.values(), ids=GARBAGE_TOKENS.keys())
async def test_garbage_is_malformed(make_auth: MakeAuth, jwks_server: JwksServer, token: str) -> None:
    auth, _ = await make_auth()
    assert await reason_of(auth, token) == "token_malformed"
    assert jwks_server.fetches == 0


async def test_unknown_kid_refetches_once_then_cools_down(
    make_auth: MakeAuth, jwks_server: JwksServer, signing_key: RsaTestKey, stranger_key: RsaTestKey
) -> None:
    auth, _ = await make_auth()
    assert await auth.authenticate(bearer(sign_token(dynamic_claims(), signing_key))) is not None
    assert jwks_server.fetches == 1

    assert await reason_of(auth, sign_token(dynamic_claims(), stranger_key)) == "unknown_kid"
    assert jwks_server.fetches == 2  # exactly one bounded refetch

    other = sign_token(dynamic_claims(), stranger_key, headers={"kid": "ghost-key-2"})
    assert await reason_of(auth, other) == "unknown_kid"
    assert jwks_server.fetches == 2  # inside the cooldown: no refetch


async def test_a_burst_of_unknown_kids_costs_one_fetch(
    make_auth: MakeAuth, jwks_server: JwksServer, signing_key: RsaTestKey, stranger_key: RsaTestKey
) -> None:
    auth, cache = await make_auth()
    assert await cache.warm()
    tokens = [sign_token(dynamic_claims(), stranger_key, headers={"kid": f"forged-{i}"}) for i in range(20)]

    results = await asyncio.gather(*(auth.authenticate(bearer(t)) for t in tokens), return_exceptions=True)

    assert all(isinstance(r, AuthError) and r.reason == "unknown_kid" for r in results)
    assert jwks_server.fetches == 2


async def test_a_cold_burst_costs_one_fetch(
    make_auth: MakeAuth, jwks_server: JwksServer, signing_key: RsaTestKey
) -> None:
    auth, _ = await make_auth()
    token = bearer(sign_token(dynamic_claims(), signing_key))
    results = await asyncio.gather(*(auth.authenticate(token) for _ in range(20)))
    assert all(isinstance(r, Principal) for r in results)
    assert jwks_server.fetches == 1


async def test_problem_body_hides_pyjwt_text(make_auth: MakeAuth, signing_key: RsaTestKey) -> None:
    auth, _ = await make_auth()
    with pytest.raises(AuthError) as caught:
        await auth.authenticate(bearer(sign_token(dynamic_claims(exp=_now() - 3600), signing_key)))
    problem = caught.value.to_problem()
    assert problem["status"] == 401 and problem["reason"] == "token_expired"
    assert "ExpiredSignatureError" in (caught.value.internal or "")
    assert "ExpiredSignatureError" not in json.dumps(problem)


async def test_rotation_is_picked_up_after_one_refetch(
    make_auth: MakeAuth, jwks_server: JwksServer, signing_key: RsaTestKey, rotated_key: RsaTestKey
) -> None:
    auth, _ = await make_auth()
    assert await auth.authenticate(bearer(sign_token(dynamic_claims(), signing_key))) is not None

    jwks_server.document = jwks_document(rotated_key)
    principal = await auth.authenticate(bearer(sign_token(dynamic_claims(), rotated_key)))

    assert principal is not None and jwks_server.fetches == 2
    # The retired key is gone from the set, and the cooldown keeps it from costing another fetch.
    assert await reason_of(auth, sign_token(dynamic_claims(), signing_key)) == "unknown_kid"
    assert jwks_server.fetches == 2


async def test_stale_keys_are_served_while_dynamic_is_down(
    make_auth: MakeAuth, jwks_server: JwksServer, signing_key: RsaTestKey, clock: FakeClock
) -> None:
    auth, cache = await make_auth()
    token = bearer(sign_token(dynamic_claims(), signing_key))
    assert await auth.authenticate(token) is not None
    assert cache.health().status == "ok"

    jwks_server.status = 503
    clock.advance(TTL_S + 1)
    assert await auth.authenticate(token) is not None

    health = cache.health()
    assert (health.status, health.stale, health.last_fetch_ok, health.source) == ("stale", True, False, "memory")
    assert health.age_s is not None and health.age_s > TTL_S
    assert jwks_server.fetches == 2

    # Back-off: a down Dynamic is not asked on every request.
    assert await auth.authenticate(token) is not None
    assert jwks_server.fetches == 2

    jwks_server.status = 200
    clock.advance(60)
    assert await auth.authenticate(token) is not None
    assert cache.health().status == "ok" and jwks_server.fetches == 3


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/.well-known/jwks"


async def test_no_keys_and_dynamic_down_is_503(make_auth: MakeAuth, signing_key: RsaTestKey) -> None:
    auth, cache = await make_auth(url=_closed_port_url())
    with pytest.raises(JwksUnavailableError) as caught:
        await auth.authenticate(bearer(sign_token(dynamic_claims(), signing_key)))
    error = caught.value
    assert isinstance(error, AuthError)
    assert (error.status, error.reason) == (503, "jwks_unavailable")
    assert error.to_problem()["type"].endswith("/auth-unavailable")
    assert cache.health().status == "unavailable"


async def test_from_settings_uses_issuer_environment_and_audience(http: httpx.AsyncClient) -> None:
    settings = AuthSettings(dynamic_environment_id=TEST_ENVIRONMENT_ID, audience=["https://app.example.com"])
    cache = JwksCache.from_settings(settings, http=http)
    auth = DynamicJwtAuth.from_settings(settings, cache)
    assert cache.url == f"https://app.dynamic.xyz/api/v0/sdk/{TEST_ENVIRONMENT_ID}/.well-known/jwks"
    assert cache.redis_key.startswith("oof:jwks:") and len(cache.redis_key) == len("oof:jwks:") + 64
    configured = (auth._issuer, auth._environment_id, auth._audience)
    assert configured == (ISSUER, TEST_ENVIRONMENT_ID, ["https://app.example.com"])
    with pytest.raises(ValueError):
        DynamicJwtAuth.from_settings(AuthSettings(), cache)

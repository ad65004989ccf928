"""JwksCache and parse_jwks on their own: which keys are trusted, caching, health."""

from __future__ import annotations

import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from deployments.auth.jwks import JwksCache, parse_jwks
from deployments.auth.testing import JwksServer, RsaTestKey, jwks_document, make_rsa_key

from .conftest import FakeClock


def test_only_rs256_signing_keys_with_a_kid_are_kept(signing_key: RsaTestKey, rotated_key: RsaTestKey) -> None:
    ec_jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True) | {"kid": "ec"}
    private_jwk = RSAAlgorithm.to_jwk(make_rsa_key().private_key, as_dict=True) | {"kid": "leaked-private"}
    document = jwks_document(
        signing_key,
        rotated_key.public_jwk(use=None),  # `use` absent counts as "sig"
        rotated_key.public_jwk(kid="enc", use="enc"),
        rotated_key.public_jwk(kid="rs512", alg="RS512"),
        rotated_key.public_jwk(kid=None),
        make_rsa_key("small", bits=1024).public_jwk(),
        ec_jwk,
        private_jwk,
        "not-a-jwk",  # type: ignore[arg-type]
    )

    keys = parse_jwks(json.dumps(document))

    assert sorted(keys) == ["dyn-key-1", "dyn-key-2"]
    assert all(key.algorithm_name == "RS256" for key in keys.values())


@pytest.mark.parametrize("document", ['{"keys": []}', "[]", '{"nope": 1}', "not json"])
def test_documents_without_usable_keys_are_refused(document: str) -> None:
    with pytest.raises(ValueError):
        parse_jwks(document)


async def test_fresh_keys_come_from_memory_until_the_ttl(
    http: httpx.AsyncClient, jwks_server: JwksServer, signing_key: RsaTestKey, clock: FakeClock
) -> None:
    cache = JwksCache(jwks_server.url, ttl_s=300, http=http, clock=clock)
    assert cache.health().status == "cold"

    assert await cache.get_key(signing_key.kid) is not None
    assert cache.health().source == "http"
    clock.advance(299)
    assert await cache.get_key(signing_key.kid) is not None
    assert (cache.health().source, jwks_server.fetches) == ("memory", 1)

    clock.advance(2)
    assert await cache.get_key(signing_key.kid) is not None
    health = cache.health()
    assert (health.source, health.status, health.redis, jwks_server.fetches) == ("http", "ok", "disabled", 2)
    assert health.key_ids == ("dyn-key-1",) and health.as_dict()["last_fetch_ok"] is True


async def test_every_http_fetch_is_reported_with_its_outcome_and_duration(
    http: httpx.AsyncClient, jwks_server: JwksServer, signing_key: RsaTestKey, clock: FakeClock
) -> None:
    calls: list[tuple[str, str, float]] = []
    cache = JwksCache(jwks_server.url, ttl_s=300, http=http, clock=clock,
                      on_fetch=lambda *call: calls.append(call))  # the API passes ApiMetrics.external_call
    assert await cache.warm()
    await cache.get_key(signing_key.kid)  # from memory: no call
    jwks_server.document = {"keys": []}
    clock.advance(301)
    await cache.get_key(signing_key.kid)
    assert [(service, outcome) for service, outcome, _ in calls] == [("dynamic_jwks", "ok"), ("dynamic_jwks", "error")]
    assert all(0 <= seconds < 5 for _, _, seconds in calls)


async def test_a_broken_jwks_answer_keeps_the_last_good_set(
    http: httpx.AsyncClient, jwks_server: JwksServer, signing_key: RsaTestKey, clock: FakeClock
) -> None:
    cache = JwksCache(jwks_server.url, ttl_s=300, http=http, clock=clock)
    assert await cache.warm()
    jwks_server.document = {"keys": [{"kty": "RSA", "kid": "junk"}]}
    clock.advance(301)

    assert await cache.get_key(signing_key.kid) is not None
    health = cache.health()
    assert health.stale and "no usable RS256" in (health.last_error or "")

"""Issue #5 §8 over the real Serve HTTP port (real PostgreSQL and Redis behind it): every attack on
the two auth schemes is a 401 problem+json that names a stable `type` and `reason` and nothing else.

Users: the attack list of tests/auth_attacks.py (the same tables the authenticator's unit tests
use) sent as `GET /v1/moments`. Services: HMAC tokens against the services-only routes — both
live secrets of a rotation, stale, replayed (the nonce lives in Redis, shared by both replicas)
and bound to another request. No route a service may call takes a body, so the body binding is
checked on `GET /health/detailed` with a body (the data plane forwards it, the signature covers it).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from deployments.auth import service_authorization
from deployments.auth.testing import RsaTestKey, dynamic_claims, make_rsa_key, sign_token
from tests.auth_attacks import CLAIM_ATTACKS, FORGED_TOKENS, GARBAGE_TOKENS, forged_tokens
from tests.e2e.conftest import SERVICE_ID, SERVICE_SECRET, SERVICE_SECRET_NEXT, ApiServer, serve_client, unique_user

UNAUTHORIZED = "https://oof.dev/problems/unauthorized"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "reason", "instance", "request_id"}
# Text only logs may carry (`AuthError.internal`, exception names, tracebacks): never a client.
INTERNAL_ONLY = ("Traceback", "Error", "not in JWKS", "header alg", "no kid", "no live secret", "unknown service",
                 "skew", "-----BEGIN")  # fmt: skip
SERVICE_ROUTES = ("/health/detailed", "/v1/admin/checkpoints")
BODY = b'{"probe":"signed"}'


@pytest_asyncio.fixture(loop_scope="session")
async def http(api_server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_client(api_server.base_url) as client:
        yield client


@pytest.fixture(scope="module")
def forged(api_server: ApiServer) -> dict[str, tuple[str, str]]:
    return forged_tokens(api_server.key, make_rsa_key("e2e-ghost-key"))


def assert_refused(response: httpx.Response, reason: str, *, never: tuple[str, ...] = ()) -> dict[str, Any]:
    """401, problem+json, the stable type and `reason`, and no member or text beyond the client-safe ones."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["status"], body["reason"]) == (UNAUTHORIZED, 401, reason), body
    assert set(body) <= PROBLEM_MEMBERS and body["request_id"], body
    leaked = [text for text in (*INTERNAL_ONLY, SERVICE_SECRET, SERVICE_SECRET_NEXT, *never) if text in response.text]
    assert not leaked, (leaked, body)
    return body


async def refused_user(http: httpx.AsyncClient, token: str, reason: str, key: RsaTestKey) -> None:
    response = await http.get("/v1/moments", headers={"authorization": f"Bearer {token}"})
    # Key material and the token itself (its tail: the signature) never come back.
    assert_refused(response, reason, never=(key.public_jwk()["n"][:40], *([token[-24:]] if len(token) >= 24 else [])))


async def test_the_untouched_token_is_accepted(api_server: ApiServer, http: httpx.AsyncClient) -> None:
    token = sign_token(dynamic_claims(sub=unique_user("e2e-control")), api_server.key)
    response = await http.get("/v1/moments", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text  # so each attack below fails for its own reason


@pytest.mark.parametrize(("overrides", "reason"), CLAIM_ATTACKS.values(), ids=CLAIM_ATTACKS.keys())
async def test_claim_attacks_are_401_problems(
    api_server: ApiServer, http: httpx.AsyncClient, overrides: dict[str, Any], reason: str
) -> None:
    await refused_user(http, sign_token(dynamic_claims(**overrides), api_server.key), reason, api_server.key)


@pytest.mark.parametrize("case", FORGED_TOKENS)
async def test_forged_tokens_are_401_problems(
    api_server: ApiServer, http: httpx.AsyncClient, forged: dict[str, tuple[str, str]], case: str
) -> None:
    token, reason = forged[case]
    await refused_user(http, token, reason, api_server.key)


@pytest.mark.parametrize("token", GARBAGE_TOKENS.values(), ids=GARBAGE_TOKENS.keys())
async def test_garbage_tokens_are_401_problems(api_server: ApiServer, http: httpx.AsyncClient, token: str) -> None:
    await refused_user(http, token, "token_malformed", api_server.key)


@pytest.mark.parametrize("route", SERVICE_ROUTES)
@pytest.mark.parametrize("secret", [SERVICE_SECRET, SERVICE_SECRET_NEXT], ids=["old-secret", "new-secret"])
async def test_both_secrets_of_a_rotation_reach_services_only_routes(
    api_server: ApiServer, http: httpx.AsyncClient, route: str, secret: str
) -> None:
    path, headers = api_server.service_request("GET", route, secret=secret)
    response = await http.get(path, headers=headers)
    assert response.status_code == 200, response.text
    user = await http.get(route, headers=api_server.user_headers(unique_user("e2e-not-a-service")))
    assert user.status_code == 403 and user.headers["content-type"] == "application/problem+json"


async def test_a_retired_secret_or_an_unknown_service_is_401(api_server: ApiServer, http: httpx.AsyncClient) -> None:
    path, headers = api_server.service_request("GET", "/health/detailed", secret=secrets.token_hex(16))
    assert_refused(await http.get(path, headers=headers), "signature_invalid")
    path = f"/health/detailed?_n=ghost-{secrets.token_hex(4)}"
    token = service_authorization("billing", SERVICE_SECRET, "GET", path, b"", int(time.time()))
    assert_refused(await http.get(path, headers={"authorization": token}), "signature_invalid", never=("billing",))


@pytest.mark.parametrize(("skew", "reason"), [(-305, "token_stale"), (305, "token_stale"), (-290, None), (290, None)],
                         ids=["300s-old", "300s-ahead", "inside-old", "inside-ahead"])  # fmt: skip
async def test_tokens_outside_the_300s_window_are_401(
    api_server: ApiServer, http: httpx.AsyncClient, skew: int, reason: str | None
) -> None:
    # ±5 s / ±10 s from the edge: a whole-second `ts` and the request's own latency stay inside the margin.
    path, headers = api_server.service_request("GET", "/health/detailed", ts=int(time.time()) + skew)
    response = await http.get(path, headers=headers)
    if reason is None:
        assert response.status_code == 200, response.text
    else:
        assert_refused(response, reason)


async def test_a_replayed_token_is_401(api_server: ApiServer, http: httpx.AsyncClient) -> None:
    path, headers = api_server.service_request("GET", "/v1/admin/checkpoints")
    assert (await http.get(path, headers=headers)).status_code == 200
    # Several at once: whichever replica answers, the nonce in Redis says "used".
    for replay in await asyncio.gather(*(http.get(path, headers=headers) for _ in range(4))):
        assert_refused(replay, "token_replayed")


@pytest.mark.parametrize(
    "signed_for",
    [{"body": BODY + b" "}, {"body": b""}, {"route": "/v1/admin/checkpoints"}, {"query": False}, {"method": "POST"}],
    ids=["other-body", "no-body", "other-path", "query-dropped", "other-method"],
)
async def test_a_token_signed_for_another_request_is_401(
    api_server: ApiServer, http: httpx.AsyncClient, signed_for: dict[str, Any]
) -> None:
    """The request is always `GET /health/detailed?_n=…` with BODY; the token was signed for a variant of it."""
    path, _ = api_server.service_request("GET", "/health/detailed")
    signed_path = path.replace("/health/detailed", signed_for.get("route", "/health/detailed"))
    if signed_for.get("query", True) is False:
        signed_path = signed_path.partition("?")[0]
    method, body = signed_for.get("method", "GET"), signed_for.get("body", BODY)
    token = service_authorization(SERVICE_ID, SERVICE_SECRET, method, signed_path, body, int(time.time()))
    assert_refused(await http.request("GET", path, content=BODY, headers={"authorization": token}), "signature_invalid")


async def test_a_refused_tampering_does_not_burn_the_genuine_token(
    api_server: ApiServer, http: httpx.AsyncClient
) -> None:
    path, headers = api_server.service_request("GET", "/health/detailed", BODY)
    assert_refused(await http.request("GET", path, content=BODY + b"!", headers=headers), "signature_invalid")
    genuine = await http.request("GET", path, content=BODY, headers=headers)
    assert genuine.status_code == 200, genuine.text  # the body is signed, carried through the data plane, verified

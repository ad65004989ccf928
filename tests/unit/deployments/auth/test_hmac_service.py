"""HmacServiceAuth: the signed-request scheme for internal services, without Redis (in-process nonces)."""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from pydantic import SecretStr

from core.errors import AuthError
from core.settings import AuthSettings
from deployments.auth import HMAC_SCHEME, HmacServiceAuth, Principal, service_authorization, sign_service_request
from deployments.auth import hmac_service

NOW = 1_750_000_000
INGEST_SECRET = "ingest-secret-0123456789abcdef"
ADMIN_OLD, ADMIN_NEW = "admin-secret-old-0123456789", "admin-secret-new-9876543210"
BODY = b'{"wallet":"9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"}'


@pytest.fixture
def auth() -> HmacServiceAuth:
    return HmacServiceAuth(
        {"ingest": [SecretStr(INGEST_SECRET)], "admin": [SecretStr(ADMIN_OLD), SecretStr(ADMIN_NEW)]}, window_s=300
    )


def header(service: str = "ingest", secret: str = INGEST_SECRET, method: str = "POST",
           path: str = "/v1/admin/track?dry=1", body: bytes = BODY, ts: int = NOW) -> str:  # fmt: skip
    return service_authorization(service, secret, method, path, body, ts)


async def check(auth: HmacServiceAuth, value: str | None, *, method: str = "POST", path: str = "/v1/admin/track?dry=1",
                body: bytes = BODY, now: float = NOW) -> Principal | None:  # fmt: skip
    return await auth.authenticate(value, method, path, body, now)


async def reason_of(auth: HmacServiceAuth, value: str, **request: Any) -> AuthError:
    with pytest.raises(AuthError) as caught:
        await check(auth, value, **request)
    return caught.value


async def test_valid_request_gives_a_service_principal(auth: HmacServiceAuth) -> None:
    principal = await check(auth, header())
    assert principal == Principal(kind="service", id="ingest")
    assert dict(principal.claims) == {"ts": NOW, "method": "POST", "path": "/v1/admin/track?dry=1"}


def test_token_format() -> None:
    token = sign_service_request("ingest", INGEST_SECRET, "post", "/p", b"", 42)
    service, ts, sig = token.split(".")
    assert (service, ts, len(sig)) == ("ingest", "42", 64)
    assert service_authorization("ingest", INGEST_SECRET, "POST", "/p", b"", 42) == f"{HMAC_SCHEME} {token}"
    with pytest.raises(ValueError):
        sign_service_request("in.gest", INGEST_SECRET, "POST", "/p", b"", 42)


@pytest.mark.parametrize("value", [None, "", "Bearer abc.def.ghi", "Basic dXNlcjpwdw=="])
async def test_other_schemes_are_not_ours(auth: HmacServiceAuth, value: str | None) -> None:
    assert await check(auth, value) is None


async def test_scheme_word_is_case_insensitive(auth: HmacServiceAuth) -> None:
    assert await check(auth, header().replace(HMAC_SCHEME, "oof-hmac")) is not None


@pytest.mark.parametrize("skew", [-301, 301, -10_000, 10_000])
async def test_timestamps_outside_the_window_are_stale(auth: HmacServiceAuth, skew: int) -> None:
    error = await reason_of(auth, header(ts=NOW + skew))
    assert error.reason == "token_stale"


@pytest.mark.parametrize("skew", [-300, 300])
async def test_window_edges_are_accepted(auth: HmacServiceAuth, skew: int) -> None:
    assert await check(auth, header(ts=NOW + skew)) is not None


async def test_replay_is_refused(auth: HmacServiceAuth) -> None:
    value = header()
    assert await check(auth, value) is not None
    assert (await reason_of(auth, value)).reason == "token_replayed"


@pytest.mark.parametrize(
    "request_change",
    [{"body": BODY + b" "}, {"body": b""}, {"path": "/v1/admin/track"}, {"path": "/v1/admin/untrack?dry=1"},
     {"method": "PUT"}, {"method": "GET"}],  # fmt: skip
    ids=["body+space", "empty-body", "query-dropped", "other-path", "PUT", "GET"],
)
async def test_signature_binds_method_path_and_body(auth: HmacServiceAuth, request_change: dict[str, Any]) -> None:
    value = header()
    assert (await reason_of(auth, value, **request_change)).reason == "signature_invalid"
    # A failed attempt does not burn the nonce: the genuine request still goes through.
    assert await check(auth, value) is not None


async def test_method_case_does_not_matter(auth: HmacServiceAuth) -> None:
    assert await check(auth, header(method="post"), method="Post") is not None


async def test_both_rotation_secrets_are_accepted(auth: HmacServiceAuth) -> None:
    assert await check(auth, header("admin", ADMIN_OLD)) == Principal(kind="service", id="admin")
    assert await check(auth, header("admin", ADMIN_NEW, body=b"{}"), body=b"{}") is not None
    assert (await reason_of(auth, header("admin", INGEST_SECRET))).reason == "signature_invalid"


async def test_unknown_service_fails_like_a_bad_signature(auth: HmacServiceAuth) -> None:
    error = await reason_of(auth, header("billing", INGEST_SECRET))
    assert error.reason == "signature_invalid"
    assert "unknown service" in (error.internal or "")
    assert "billing" not in error.detail


def _sig() -> str:
    return header().split(".")[-1]


@pytest.mark.parametrize(
    "token",
    ["", "ingest", f"ingest.{_sig()}", f"ingest.17500x0000.{_sig()}", f"ingest.+1750000000.{_sig()}",
     f"ingest.１７５０.{_sig()}", f".{NOW}.{_sig()}", f"ingest.{NOW}.{_sig().upper()}", f"ingest.{NOW}.{_sig()[:-2]}",
     f"ingest.{NOW}.{_sig()}00", f"ingest.{NOW}.{'z' * 64}", f"{'s' * 600}.{NOW}.{_sig()}"],  # fmt: skip
    ids=["empty", "one-part", "two-parts", "ts-not-digits", "ts-signed", "ts-unicode-digits", "no-service",
         "uppercase-hex", "short-sig", "long-sig", "not-hex", "oversized"],  # fmt: skip
)
async def test_malformed_tokens(auth: HmacServiceAuth, token: str) -> None:
    assert (await reason_of(auth, f"{HMAC_SCHEME} {token}")).reason == "token_malformed"


async def test_every_live_secret_is_compared_with_compare_digest(
    auth: HmacServiceAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac_service.hmac, "compare_digest", spy)

    # The first of the two secrets matches, yet the second is compared too: no early exit.
    assert await check(auth, header("admin", ADMIN_OLD)) is not None
    assert len(calls) == 2
    assert all(isinstance(a, bytes) and isinstance(b, bytes) and len(a) == len(b) == 32 for a, b in calls)


async def test_from_settings_and_health() -> None:
    settings = AuthSettings(service_secrets={"ingest": [INGEST_SECRET]}, hmac_window_s=60)
    auth = HmacServiceAuth.from_settings(settings)
    assert await check(auth, header(ts=NOW - 60)) is not None
    assert (await reason_of(auth, header(ts=NOW - 61, body=b"x"), body=b"x")).reason == "token_stale"
    assert auth.health() == {
        "redis": {"state": "disabled", "last_error": None}, "nonce_store": "memory (per replica)", "local_nonces": 1,
    }  # fmt: skip


def test_bad_secret_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        HmacServiceAuth({"ingest": []})
    with pytest.raises(ValueError):
        HmacServiceAuth({"ingest": ["a", "b", "c"]})
    with pytest.raises(ValueError):
        HmacServiceAuth({"in.gest": ["a"]})

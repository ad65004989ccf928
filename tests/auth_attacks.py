"""The attack list against Dynamic user tokens, as case tables: name -> (token or claims, expected `reason`).

Shared by the unit tests of the authenticator (tests/unit/deployments/auth/test_dynamic_jwt.py)
and the e2e tests that send the same tokens to the real Serve HTTP port
(tests/e2e/test_auth_on_serve.py), so both check one list. Tokens come from the builders in
`deployments.auth.testing`; `key` is the key the JWKS publishes, `stranger` one it never did.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt

from deployments.auth.testing import (
    TEST_ENVIRONMENT_ID,
    RsaTestKey,
    dynamic_claims,
    forge_hs256_token,
    forge_token,
    sign_token,
)

__all__ = ["ISSUER", "CLAIM_ATTACKS", "FORGED_TOKENS", "GARBAGE_TOKENS", "REFUSED_BEFORE_KEY_LOOKUP", "forged_tokens",
           "tampered"]

ISSUER = f"app.dynamic.xyz/{TEST_ENVIRONMENT_ID}"
OTHER_ENVIRONMENT = "00000000-0000-0000-0000-000000000000"

# Reasons decided from the token's header alone: the JWKS is never consulted for them.
REFUSED_BEFORE_KEY_LOOKUP = frozenset({"alg_not_allowed", "token_malformed"})


def _now() -> int:
    return int(time.time())


# Claims for `dynamic_claims(**overrides)`, validly signed by the published key.
CLAIM_ATTACKS: dict[str, tuple[dict[str, Any], str]] = {
    "expired": ({"iat": _now() - 7200, "exp": _now() - 3600}, "token_expired"),
    "expired beyond leeway": ({"exp": _now() - 31}, "token_expired"),
    "not yet valid (nbf)": ({"nbf": _now() + 3600}, "token_not_yet_valid"),
    "issued in the future": ({"iat": _now() + 3600, "exp": _now() + 7200}, "token_not_yet_valid"),
    "wrong issuer": ({"iss": f"app.dynamic.xyz/{OTHER_ENVIRONMENT}"}, "issuer_invalid"),
    "other issuer host": ({"iss": f"evil.example/{TEST_ENVIRONMENT_ID}"}, "issuer_invalid"),
    "wrong environment": ({"environment_id": OTHER_ENVIRONMENT, "issuer": ISSUER}, "environment_invalid"),
    "no environment": ({"environment_id": None, "issuer": ISSUER}, "environment_invalid"),
    "no user:basic": ({"scope": "wallet:sign"}, "scope_missing"),
    "no scope at all": ({"scope": None}, "scope_missing"),
    "scope substring trick": ({"scope": "user:basic-ish"}, "scope_missing"),
    "MFA pending": ({"scope": "user:basic requiresAdditionalAuth"}, "additional_auth_required"),
    "MFA pending only": ({"scope": "requiresAdditionalAuth"}, "additional_auth_required"),
    "no exp": ({"exp": None}, "token_malformed"),
    "no iat": ({"iat": None}, "token_malformed"),
    "no sub": ({"sub": None}, "token_malformed"),
    "no iss": ({"iss": None}, "issuer_invalid"),
    "non-string scope": ({"scope": ["user:basic"]}, "token_malformed"),
}

GARBAGE_TOKENS: dict[str, str] = {
    "word": "garbage",
    "three-junk-segments": "a.b.c",
    "two-segments": "a.b",
    "dots": "....",
    "bad-base64": "eyJhbGciOiJSUzI1NiJ9.!!!.abc",
    "oversized": "x" * 9000,
}


def tampered(token: str, **claims: Any) -> str:
    """`token` with its payload swapped for `dynamic_claims(**claims)`, header and signature kept."""
    header, _, signature = token.split(".")
    payload = forge_token({}, dynamic_claims(**claims)).split(".")[1]
    return f"{header}.{payload}.{signature}"


def forged_tokens(key: RsaTestKey, stranger: RsaTestKey) -> dict[str, tuple[str, str]]:
    """Tokens with good claims but a forged header or signature; the keys of `FORGED_TOKENS`."""
    claims = dynamic_claims()
    refused = "alg_not_allowed"
    cases: dict[str, tuple[str, str]] = {
        f"alg {alg}": (forge_token({"alg": alg, "typ": "JWT", "kid": key.kid}, claims), refused)
        for alg in ("none", "None", "NONE")
    }
    cases["no alg"] = (forge_token({"typ": "JWT", "kid": key.kid}, claims), refused)
    # RS/HS confusion: HMAC keyed with the public key, as a naive verifier would check it.
    for name, secret in (("PEM", key.public_pem()), ("JWK", json.dumps(key.public_jwk()).encode())):
        cases[f"HS256 keyed with the public {name}"] = (forge_hs256_token(claims, secret, kid=key.kid), refused)
    for alg in ("RS384", "RS512", "PS256"):
        cases[alg] = (jwt.encode(claims, key.private_key, algorithm=alg, headers={"kid": key.kid}), refused)
    cases["no kid"] = (jwt.encode(claims, key.private_key, algorithm="RS256"), "token_malformed")
    cases["unknown kid"] = (sign_token(claims, stranger), "unknown_kid")
    cases["another key under a known kid"] = (sign_token(claims, stranger, headers={"kid": key.kid}),
                                              "signature_invalid")
    cases["tampered payload"] = (tampered(sign_token(claims, key), sub="someone-else"), "signature_invalid")
    assert tuple(cases) == FORGED_TOKENS, "FORGED_TOKENS names the cases (parametrize ids need them up front)"
    return cases


FORGED_TOKENS = ("alg none", "alg None", "alg NONE", "no alg", "HS256 keyed with the public PEM",
                 "HS256 keyed with the public JWK", "RS384", "RS512", "PS256", "no kid", "unknown kid",
                 "another key under a known kid", "tampered payload")  # fmt: skip

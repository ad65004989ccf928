"""User authentication: Dynamic.xyz access tokens (RS256 JWTs) from `Authorization: Bearer <token>`.

Checks, in order: a Bearer token is present and parses; its header `alg` is RS256 (anything
else, `none` and HS256-with-the-public-key included, is refused before any key lookup); its
`kid` is in Dynamic's JWKS (one rate-bounded refetch for an unknown kid); the RS256 signature;
`exp`, `iat`, `sub`, `iss` present; `exp`/`nbf`/`iat` within `leeway_s`; `iss` equals the
configured issuer; `aud` is allowed (when an allow-list is configured); `environment_id` is
ours; `scope` holds every required scope and not `requiresAdditionalAuth` (MFA still pending).

Every refusal is an `AuthError` (401) with a stable `reason`, or `JwksUnavailableError` (503)
when no keys can be had. PyJWT's messages go only to `internal`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from core.errors import AuthError
from core.settings import AuthSettings
from deployments.auth.jwks import JwksCache
from deployments.auth.principal import Principal

__all__ = ["DynamicJwtAuth", "BEARER_SCHEME", "ADDITIONAL_AUTH_SCOPE", "USER_BASIC_SCOPE"]

BEARER_SCHEME = "bearer"
ALGORITHM = "RS256"
USER_BASIC_SCOPE = "user:basic"
ADDITIONAL_AUTH_SCOPE = "requiresAdditionalAuth"
MAX_TOKEN_CHARS = 8192  # Dynamic's access tokens are ~1 KB; bound the work an unauthenticated caller can cause

_REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss"]


def _fail(reason: str, detail: str, internal: str | None = None) -> AuthError:
    return AuthError(detail, reason=reason, internal=internal)


def _decode_error(exc: jwt_errors.PyJWTError) -> AuthError:
    """Translate PyJWT's exception into our reason code; subclasses are matched before their bases."""
    internal = f"{type(exc).__name__}: {exc}"
    match exc:
        case jwt_errors.ExpiredSignatureError():
            return _fail("token_expired", "the token has expired", internal)
        case jwt_errors.ImmatureSignatureError():
            return _fail("token_not_yet_valid", "the token is not valid yet", internal)
        case jwt_errors.InvalidIssuerError():
            return _fail("issuer_invalid", "the token was issued by someone else", internal)
        case jwt_errors.InvalidAudienceError():
            return _fail("audience_invalid", "the token is not meant for this service", internal)
        case jwt_errors.MissingRequiredClaimError(claim="aud"):
            return _fail("audience_invalid", "the token is not meant for this service", internal)
        case jwt_errors.MissingRequiredClaimError(claim="iss"):
            return _fail("issuer_invalid", "the token was issued by someone else", internal)
        case jwt_errors.InvalidAlgorithmError():
            return _fail("alg_not_allowed", "the token's signing algorithm is not accepted", internal)
        case jwt_errors.InvalidSignatureError():
            return _fail("signature_invalid", "the token signature is invalid", internal)
        case _:  # DecodeError, MissingRequiredClaimError, InvalidIssuedAtError, InvalidSubjectError, ...
            return _fail("token_malformed", "the token is malformed", internal)


class DynamicJwtAuth:
    """Turns a Dynamic access token into a user `Principal`; None when the request carries no Bearer token."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        environment_id: str,
        audience: Sequence[str] = (),
        leeway_s: float = 30.0,
        required_scopes: Iterable[str] = (USER_BASIC_SCOPE,),
    ) -> None:
        if not issuer or not environment_id:
            raise ValueError("Dynamic JWT auth needs an issuer and an environment id")
        self._jwks = jwks
        self._issuer = issuer
        self._environment_id = environment_id
        self._audience = list(audience)
        self._leeway_s = leeway_s
        self._required_scopes = frozenset(required_scopes)

    @classmethod
    def from_settings(cls, auth: AuthSettings, jwks: JwksCache, **options: Any) -> DynamicJwtAuth:
        if not auth.dynamic_environment_id or not auth.issuer:
            raise ValueError("auth.dynamic_environment_id must be set for Dynamic JWT auth")
        return cls(
            jwks, issuer=auth.issuer, environment_id=auth.dynamic_environment_id, audience=auth.audience, **options
        )

    async def authenticate(self, authorization_header: str | None) -> Principal | None:
        token = self._bearer_token(authorization_header)
        if token is None:
            return None
        kid = self._checked_header(token)
        key = await self._jwks.get_key(kid)  # may raise JwksUnavailableError (503)
        if key is None:
            raise _fail("unknown_kid", "the token was signed with an unknown key", f"kid {kid!r} not in JWKS")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience or None,
                leeway=self._leeway_s,
                options={
                    "require": _REQUIRED_CLAIMS + (["aud"] if self._audience else []),
                    # PyJWT refuses any `aud` when given no audience: with no allow-list, skip the check.
                    "verify_aud": bool(self._audience),
                },
            )
        except jwt_errors.PyJWTError as exc:
            raise _decode_error(exc) from None
        return self._principal(claims)

    @staticmethod
    def _bearer_token(header: str | None) -> str | None:
        if not header or not header.strip():
            return None
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() != BEARER_SCHEME:
            return None  # another scheme's header (e.g. service HMAC): not ours to judge
        token = rest.strip()
        if not token:
            raise _fail("token_missing", "the Bearer token is empty")
        if len(token) > MAX_TOKEN_CHARS:
            raise _fail("token_malformed", "the token is malformed", f"token is {len(token)} chars")
        return token

    @staticmethod
    def _checked_header(token: str) -> str:
        """The token's `kid`, after refusing any `alg` but RS256 (RFC 8725 §2.1: never let the token pick)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt_errors.PyJWTError as exc:
            raise _fail("token_malformed", "the token is malformed", f"{type(exc).__name__}: {exc}") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise _fail("alg_not_allowed", "the token's signing algorithm is not accepted", f"header alg {alg!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _fail("token_malformed", "the token is malformed", "header has no kid")
        return kid

    def _principal(self, claims: dict[str, Any]) -> Principal:
        if claims.get("environment_id") != self._environment_id:
            raise _fail(
                "environment_invalid",
                "the token belongs to another environment",
                f"environment_id {claims.get('environment_id')!r}",
            )
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise _fail("token_malformed", "the token is malformed", f"scope is a {type(scope).__name__}")
        scopes = frozenset(scope.split())
        # Checked before the required scopes: an MFA-pending token should say so, not "scope missing".
        if ADDITIONAL_AUTH_SCOPE in scopes:
            raise _fail("additional_auth_required", "finish additional authentication (MFA) first")
        if missing := self._required_scopes - scopes:
            raise _fail("scope_missing", "the token lacks a required scope", f"missing {sorted(missing)}")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise _fail("token_malformed", "the token is malformed", "sub is not a non-empty string")
        return Principal(kind="user", id=subject, scopes=scopes, claims=claims)

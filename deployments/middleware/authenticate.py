"""Who is calling: resolve the `Principal` once per request, before the rate limiter needs it.

The middleware never rejects: it records an `AuthOutcome` (a principal, an `AuthError`, or
neither) in the ASGI scope. The rate limiter counts the request against the principal (or
the client IP when there is none), and routes decide with the dependencies below whether
they need a caller at all: public routes ignore the outcome, protected routes raise the
recorded `AuthError` (401 with its `reason`) or `token_missing`.

The dependencies are `async def` on purpose: FastAPI runs plain `def` dependencies in its
thread pool, a thread hop per request for a dictionary lookup.

Schemes (see `deployments.auth`): `Authorization: Bearer <Dynamic JWT>` makes a user,
`Authorization: OOF-HMAC <service_id>.<ts>.<sig>` a service. The HMAC signature covers the
body, so only that scheme reads it (bounded by `max_body_bytes`) and replays it to the app.

`on_principal` (the active-users tracker, `deployments.active_users`) sees every authenticated
principal once per request, before the app runs; it must be synchronous and cheap (no I/O).
"""

from __future__ import annotations

import time
import hmac
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import AuthError
from deployments.auth import HMAC_SCHEME, DynamicJwtAuth, HmacServiceAuth, Principal, require_service, require_user
from deployments.problems import HttpStatusError

__all__ = [
    "AUTH_SCOPE_KEY",
    "AuthOutcome",
    "AuthenticateMiddleware",
    "auth_outcome",
    "principal_of",
    "caller",
    "user_caller",
    "service_caller",
    "SECURITY_SCHEMES",
    "ANY_CALLER",
    "USERS_ONLY",
    "SERVICES_ONLY",
    "METRICS_SCHEME",
    "check_metrics_caller",
]

AUTH_SCOPE_KEY = "oof.auth"
METRICS_SCHEME = "OOF-Metrics"  # Prometheus: `authorization: {type: OOF-Metrics, credentials: <api.metrics_token>}`

log = structlog.get_logger("oof.api")

# OpenAPI: both schemes, and `openapi_extra=` values for routes (requirements in a list are alternatives).
SECURITY_SCHEMES = {
    "dynamicJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Dynamic.xyz access token (RS256, `scope` must hold `user:basic`): `Authorization: Bearer <jwt>`.",
    },
    "serviceHmac": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            f"Internal services: `Authorization: {HMAC_SCHEME} <service_id>.<unix_ts>.<hex sig>`, sig = "
            "HMAC-SHA256(secret, `service_id.ts.METHOD.path?query.sha256hex(body)`); single use, ±300 s."
        ),
    },
}
SECURITY_SCHEMES["metricsToken"] = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "Prometheus scrapers, /metrics only: `Authorization: OOF-Metrics <api.metrics_token>`.",
}
ANY_CALLER = {"security": [{"dynamicJwt": []}, {"serviceHmac": []}]}
USERS_ONLY = {"security": [{"dynamicJwt": []}]}
SERVICES_ONLY = {"security": [{"serviceHmac": []}]}
_BEARER = "bearer"
_HMAC = HMAC_SCHEME.lower()


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """What the credentials of one request said: a principal, a refusal, or nothing at all."""

    principal: Principal | None = None
    error: AuthError | None = None


_ANONYMOUS = AuthOutcome()


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return value.decode("latin-1")
    return None


def _request_target(scope: Scope) -> str:
    """The path as the client sent it, query included: what an HMAC signature covers."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else scope["path"]
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


class AuthenticateMiddleware:
    """Puts an `AuthOutcome` under `scope["oof.auth"]` and binds `user_id` to the request's logs."""

    def __init__(
        self,
        app: ASGIApp,
        user_auth: DynamicJwtAuth | None,
        service_auth: HmacServiceAuth | None,
        *,
        max_body_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.time,
        on_principal: Callable[[Principal], None] | None = None,
    ) -> None:
        self.app = app
        self.on_principal = on_principal
        self.user_auth = user_auth
        self.service_auth = service_auth
        self.max_body_bytes = max_body_bytes
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = _authorization(scope)
        outcome, receive = await self._authenticate(header, scope, receive) if header else (_ANONYMOUS, receive)
        scope[AUTH_SCOPE_KEY] = outcome
        if outcome.principal is None:
            await self.app(scope, receive, send)
            return
        if self.on_principal is not None:
            try:
                self.on_principal(outcome.principal)
            except Exception:  # noqa: BLE001 - bookkeeping must never fail a request
                log.exception("auth.on_principal_failed")
        with structlog.contextvars.bound_contextvars(
            user_id=outcome.principal.id, principal_kind=outcome.principal.kind
        ):
            await self.app(scope, receive, send)

    async def _authenticate(self, header: str, scope: Scope, receive: Receive) -> tuple[AuthOutcome, Receive]:
        scheme = header.strip().partition(" ")[0].lower()
        if scheme == METRICS_SCHEME.lower():
            return _ANONYMOUS, receive  # a scraper's token: checked by /metrics alone (`metrics_caller`)
        try:
            if scheme == _BEARER:
                if self.user_auth is None:
                    raise AuthError("user tokens are not accepted here", reason="scheme_not_configured")
                return AuthOutcome(await self.user_auth.authenticate(header)), receive
            if scheme == _HMAC:
                if self.service_auth is None:
                    raise AuthError("service tokens are not accepted here", reason="scheme_not_configured")
                body, receive = await self._read_body(receive)
                principal = await self.service_auth.authenticate(
                    header, scope["method"], _request_target(scope), body, self.clock()
                )
                return AuthOutcome(principal), receive
            raise AuthError("unsupported Authorization scheme", reason="scheme_unsupported")
        except AuthError as exc:
            return AuthOutcome(error=exc), receive

    async def _read_body(self, receive: Receive) -> tuple[bytes, Receive]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app will see the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise HttpStatusError(413, f"request bodies are limited to {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return body, replay


def auth_outcome(request: Request) -> AuthOutcome:
    outcome = request.scope.get(AUTH_SCOPE_KEY)
    return outcome if isinstance(outcome, AuthOutcome) else _ANONYMOUS


def principal_of(scope: Scope) -> Principal | None:
    outcome = scope.get(AUTH_SCOPE_KEY)
    return outcome.principal if isinstance(outcome, AuthOutcome) else None


def _checked(request: Request) -> Principal | None:
    outcome = auth_outcome(request)
    if outcome.error is not None:
        raise outcome.error
    return outcome.principal


def check_metrics_caller(request: Request, token: str | None) -> None:
    """For /metrics: a service, or `Authorization: OOF-Metrics <token>` when `token` is set; else 401/403."""
    principal = _checked(request)
    if principal is not None:
        require_service(principal)  # a user token is a 403
        return
    scheme, _, given = (request.headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == METRICS_SCHEME.lower() and token is not None:
        if hmac.compare_digest(given.strip().encode(), token.encode()):
            return
        raise AuthError("wrong metrics token", reason="metrics_token_invalid")
    raise AuthError("metrics need a service token or the scraper token", reason="token_missing")


async def caller(request: Request) -> Principal:
    """Dependency: any authenticated caller (a user, or a service that sees everything)."""
    principal = _checked(request)
    if principal is None:
        raise AuthError("authentication required", reason="token_missing")
    return principal


async def user_caller(request: Request) -> Principal:
    """Dependency: a user (services get 403)."""
    return require_user(_checked(request))


async def service_caller(request: Request) -> Principal:
    """Dependency: an internal service (users get 403)."""
    return require_service(_checked(request))

"""Request ids: accept a sane `X-Request-ID`, otherwise make one; echo it and bind it to every log line.

Accepted: 1-128 characters of `[A-Za-z0-9._-]` (Serve's proxy sends a UUID when the client
did not). Anything else (too long, spaces, control characters) is replaced, never echoed,
so a client cannot inject text into our logs or responses.

Behind Ray Serve, `echo=False`: Serve's own RequestIdMiddleware (proxy or direct-ingress
server) already appends `X-Request-ID` to every response, and a second header would be
joined into `id, id`. Serve echoes the client's raw value, so only for an *invalid* client
id do its header and our id (logs, problem bodies) differ (docs/SERVE.md).
"""

from __future__ import annotations

import re
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REQUEST_ID_HEADER", "REQUEST_ID_SCOPE_KEY", "RequestIdMiddleware", "valid_request_id", "request_id_of"]

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_SCOPE_KEY = "oof.request_id"
_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def valid_request_id(value: str | None) -> bool:
    return value is not None and _VALID.fullmatch(value) is not None


def request_id_of(scope: Scope) -> str | None:
    value = scope.get(REQUEST_ID_SCOPE_KEY)
    return value if isinstance(value, str) else None


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            try:
                return value.decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


class RequestIdMiddleware:
    """Outermost layer: everything inside (logs, problems) sees the same id."""

    def __init__(self, app: ASGIApp, *, echo: bool = True) -> None:
        self.app = app
        self.echo = echo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _incoming(scope)
        request_id = incoming if valid_request_id(incoming) else uuid.uuid4().hex
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        encoded = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", encoded)]}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id if self.echo else send)

"""Pure-ASGI rate-limit middleware: 429 problem+json when over budget, RateLimit fields otherwise.

Which policy and subject a request counts against is not decided here: `classify(scope)`
returns a `RateKey` (or None to skip limiting), so route classes and principals stay the API's
business. Non-HTTP scopes (lifespan, websocket) pass through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import RateLimitedError
from deployments.ratelimit.gcra import Decision
from deployments.ratelimit.limiter import RateLimiter

__all__ = ["RateKey", "Classify", "RateLimitMiddleware", "PROBLEM_CONTENT_TYPE"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


class RateKey(NamedTuple):
    """What one request is counted against: a configured policy and who is asking."""

    policy_name: str
    subject: str


Classify = Callable[[Scope], RateKey | tuple[str, str] | None]


def _problem(decision: Decision) -> bytes:
    error = RateLimitedError(decision.retry_after_s)  # rounds up, as Retry-After does
    body = error.to_problem()
    body["detail"] = f"rate limit {decision.policy_name!r} exceeded; retry in {error.retry_after} s"
    body["violated-policies"] = [decision.policy_name]
    return json.dumps(body, separators=(",", ":")).encode()


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class RateLimitMiddleware:
    """Wraps an ASGI app; one `limiter.check` per classified HTTP request."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, classify: Classify) -> None:
        self.app = app
        self.limiter = limiter
        self.classify = classify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (key := self.classify(scope)) is None:
            await self.app(scope, receive, send)
            return
        policy_name, subject = key
        decision = await self.limiter.check(policy_name, subject)
        extra = _encoded(self.limiter.headers(decision))
        if not decision.allowed:
            body = _problem(decision)
            headers = [
                (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ]
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Both fields are sf-lists, and list fields may span several field lines: a route
                # that reports its own (inner) policy keeps it, and ours joins the list.
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

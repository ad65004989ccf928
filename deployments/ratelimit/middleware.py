"""Pure-ASGI rate-limit middleware: 429 problem+json when over budget, RateLimit fields otherwise.

Which policies and subjects a request counts against is not decided here: `classify(scope)`
returns a `RateKey`, a list of them (`deployments.ratelimit.classify`: the caller's policy and
each matching route class), or None (or an empty list) to skip limiting. The keys are checked in
order and every one must allow the request: the first that refuses answers the 429, with that
policy's fields alone, and the keys after it are not charged (those before it are, as a refused
request still reached us). An allowed response carries one `RateLimit-Policy` and one `RateLimit`
field line per key. Non-HTTP scopes (lifespan, websocket) pass through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
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


Classify = Callable[[Scope], RateKey | tuple[str, str] | Sequence[RateKey] | None]


def _keys(found: RateKey | tuple[str, str] | Sequence[RateKey] | None) -> list[tuple[str, str]]:
    if not found:
        return []
    if isinstance(found[0], str):  # one (policy, subject) pair
        return [found]  # type: ignore[list-item]
    return list(found)  # type: ignore[arg-type]


def _problem(decision: Decision) -> bytes:
    error = RateLimitedError(decision.retry_after_s)  # rounds up, as Retry-After does
    body = error.to_problem()
    body["detail"] = f"rate limit {decision.policy_name!r} exceeded; retry in {error.retry_after} s"
    body["violated-policies"] = [decision.policy_name]
    return json.dumps(body, separators=(",", ":")).encode()


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class RateLimitMiddleware:
    """Wraps an ASGI app; one `limiter.check` per key of a classified HTTP request."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, classify: Classify) -> None:
        self.app = app
        self.limiter = limiter
        self.classify = classify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (keys := _keys(self.classify(scope))):
            await self.app(scope, receive, send)
            return
        extra: list[tuple[bytes, bytes]] = []
        for policy_name, subject in keys:
            decision = await self.limiter.check(policy_name, subject)
            if not decision.allowed:
                await self._refuse(decision, send)
                return
            extra += _encoded(self.limiter.headers(decision))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Both fields are sf-lists, and list fields may span several field lines: a route
                # that reports its own (inner) policy keeps it, and ours joins the list.
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, decision: Decision, send: Send) -> None:
        body = _problem(decision)
        headers = [
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            *_encoded(self.limiter.headers(decision)),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})

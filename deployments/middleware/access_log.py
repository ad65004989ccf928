"""One `http.request` log event and one latency observation per request.

The event carries method, path, route template, status, duration_ms, client and (when
authenticated) the principal, plus the `request_id` bound by the outer layer. Metrics are
labelled by route *template* (`/v1/moments/{moment_id}`), never the raw path, so label
cardinality stays bounded; a request no route matches is labelled `<unmatched>`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deployments.middleware.authenticate import principal_of

__all__ = ["AccessLogMiddleware", "Observe", "route_template", "UNMATCHED_ROUTE"]

UNMATCHED_ROUTE = "<unmatched>"

# (method, route template, status, seconds) -> None
Observe = Callable[[str, str, int, float], None]

log = structlog.get_logger("oof.access")


def route_template(scope: Scope) -> str:
    """The matched route's path template; for requests answered before routing (429, 401), look it up.

    The lookup uses `app.state.route_templates` (`(path_regex, template)` pairs that
    `app.build_app` records), so no router internals are involved.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str):
        return template
    state = getattr(scope.get("app"), "state", None)
    path = scope.get("path", "")
    for regex, candidate in getattr(state, "route_templates", ()):
        if regex.match(path):
            return candidate
    return UNMATCHED_ROUTE


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, observe: Observe | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if nothing below answers

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            if self.observe is not None:
                self.observe(scope["method"], route, status, elapsed)
            principal = principal_of(scope)
            client = scope.get("client")
            log.info(
                "http.request",
                method=scope["method"],
                path=scope["path"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
                client=client[0] if client else None,
                user_id=principal.id if principal else None,
                principal_kind=principal.kind if principal else None,
            )

"""The last line of defence: anything raised below becomes a problem+json response.

Route errors are normally rendered by the exception handlers inside the router
(`problems.install_exception_handlers`); this layer catches what escapes them or is raised
by middleware below it (authentication, rate limiting) and every unexpected exception.
A bug becomes a 500 `internal` problem with a generic detail; the traceback is logged with
the request id, never sent. If the response had already started, nothing can be sent:
the error is logged and the connection closed.
"""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import OofError
from deployments.middleware.request_id import request_id_of
from deployments.problems import INTERNAL_DETAIL, ProblemHook, as_oof_error, problem_response

__all__ = ["ProblemMiddleware"]

log = structlog.get_logger("oof.api")


class ProblemMiddleware:
    def __init__(self, app: ASGIApp, on_problem: ProblemHook | None = None) -> None:
        self.app = app
        self.on_problem = on_problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - this is the catch-all, by design
            error = as_oof_error(exc)
            if error is None:
                log.exception("http.unhandled_error", path=scope.get("path"), error_type=type(exc).__name__)
                error = OofError(INTERNAL_DETAIL)
            elif error.status >= 500:
                log.error("http.server_error", problem=error.type_slug, internal=error.internal)
            if started:
                log.error("http.error_after_response_started", problem=error.type_slug)
                return
            if self.on_problem is not None:
                self.on_problem(error)
            response = problem_response(error, request_id=request_id_of(scope), instance=scope.get("path"))
            await response(scope, receive, send)

"""The last line of defence: anything raised below becomes a problem+json response.

Route errors are normally rendered by the exception handlers inside the router
(`problems.install_exception_handlers`); this layer catches what escapes them or is raised
by middleware below it (authentication, rate limiting) and every unexpected exception.
A bug becomes a 500 `internal` problem with a generic detail; the traceback is logged with
the request id, never sent. If the response had already started, nothing can be sent:
the error is logged and the connection closed.

Problem bodies rendered by inner layers that do not know the request (the rate limiter's
429) get `instance` and `request_id` added here, so every problem has the same shape.
"""

from __future__ import annotations

import orjson
import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import OofError
from deployments.middleware.request_id import request_id_of
from deployments.problems import INTERNAL_DETAIL, PROBLEM_MEDIA_TYPE, ProblemHook, as_oof_error, problem_response

__all__ = ["ProblemMiddleware"]

log = structlog.get_logger("oof.api")
_MAX_ENRICHED_BYTES = 64 * 1024


def _enriched(body: bytes, scope: Scope) -> bytes:
    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(problem, dict) or ("request_id" in problem and "instance" in problem):
        return body
    problem.setdefault("instance", scope.get("path"))
    problem.setdefault("request_id", request_id_of(scope))
    return orjson.dumps(problem)


class ProblemMiddleware:
    def __init__(self, app: ASGIApp, on_problem: ProblemHook | None = None) -> None:
        self.app = app
        self.on_problem = on_problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        held: Message | None = None  # the start of a problem response, until its body is complete
        chunks: list[bytes] = []

        async def tracking_send(message: Message) -> None:
            nonlocal started, held
            if message["type"] == "http.response.start":
                if MutableHeaders(raw=message["headers"]).get("content-type") == PROBLEM_MEDIA_TYPE:
                    held = message
                    return
                started = True
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False) and sum(map(len, chunks)) < _MAX_ENRICHED_BYTES:
                    return
                body = b"".join(chunks)
                if not message.get("more_body", False):
                    body = _enriched(body, scope)
                headers = MutableHeaders(raw=list(held["headers"]))
                headers["content-length"] = str(len(body))
                await send({**held, "headers": headers.raw})
                started, held = True, None
                message = {**message, "body": body}
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

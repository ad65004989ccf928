"""`application/problem+json` (RFC 9457): one renderer for every error the API returns.

Every error body has a stable `type` URI (`https://oof.dev/problems/<slug>`, from
`core.errors`), `title`, `status`, a client-safe `detail`, the `instance` (request path)
and the `request_id` to quote in a bug report. An `OofError`'s `internal` text, SQL,
stack traces and secrets never reach a body: they are logged instead.

Request-validation errors (FastAPI/pydantic) become a 422 `validation` problem whose
`errors` list holds `{field, message}` pairs, `field` being the dotted location
(`query.limit`). Starlette's own HTTP errors (unknown path, wrong method) get problem
bodies too. Anything else is a bug: a 500 `internal` problem with a generic detail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from core.errors import (
    PROBLEM_TYPE_BASE,
    AuthError,
    FieldError,
    NotFoundError,
    OofError,
    RateLimitedError,
    ValidationError,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "INTERNAL_DETAIL",
    "Problem",
    "FieldProblem",
    "ValidationProblem",
    "AuthProblem",
    "RateLimitProblem",
    "ProblemHook",
    "HttpStatusError",
    "problem_body",
    "problem_response",
    "validation_error",
    "as_oof_error",
    "install_exception_handlers",
    "problem_responses",
]

log = structlog.get_logger("oof.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
INTERNAL_DETAIL = "an internal error occurred; quote the request_id when reporting it"

# Called once per rendered problem (metrics: auth failures by reason, ...).
ProblemHook = Callable[[OofError], None]


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, for the client; `request_id` ties it to our logs."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description=f"stable problem type URI, `{PROBLEM_TYPE_BASE}<slug>`")
    title: str = Field(description="short summary of the problem type")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what happened, for this request")
    instance: str | None = Field(None, description="the request path")
    request_id: str | None = Field(None, description="the X-Request-ID of the request")


class FieldProblem(BaseModel):
    field: str = Field(description="dotted location of the invalid input, e.g. `query.limit`")
    message: str = Field(description="what is wrong with it")


class ValidationProblem(Problem):
    errors: list[FieldProblem] = Field(description="every invalid field")


class AuthProblem(Problem):
    reason: str = Field(description="stable reason code, e.g. `token_expired`, `token_missing`")


class RateLimitProblem(Problem):
    retry_after: int = Field(description="seconds to wait, as in the Retry-After header")


class HttpStatusError(OofError):
    """A plain HTTP error raised by the framework (unknown route, wrong method, ...)."""

    def __init__(self, status: int, detail: str | None) -> None:
        self.type_slug = "not-found" if status == 404 else f"http-{status}"  # type: ignore[misc]
        self.title = _STATUS_TITLES.get(status, "HTTP error")  # type: ignore[misc]
        super().__init__(detail or self.title, status=status)


_STATUS_TITLES = {
    400: "Bad request",
    404: NotFoundError.title,
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request too large",
    415: "Unsupported media type",
}


def problem_body(error: OofError, *, request_id: str | None = None, instance: str | None = None) -> dict[str, Any]:
    """The JSON body for `error` (a `ValidationError` lists its fields as `{field, message}`)."""
    body = error.to_problem()
    if instance is not None:
        body["instance"] = instance
    if request_id is not None:
        body["request_id"] = request_id
    return body


def _headers(error: OofError) -> dict[str, str]:
    if isinstance(error, RateLimitedError):
        return {"Retry-After": str(max(1, error.retry_after))}
    if isinstance(error, AuthError) and error.status == 401:
        return {"WWW-Authenticate": 'Bearer realm="oof"'}
    if isinstance(error, AuthError) and error.status == 503:
        return {"Retry-After": "5"}
    return {}


def problem_response(error: OofError, *, request_id: str | None = None, instance: str | None = None) -> Response:
    body = orjson.dumps(problem_body(error, request_id=request_id, instance=instance))
    return Response(body, status_code=error.status, media_type=PROBLEM_MEDIA_TYPE, headers=_headers(error))


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def validation_error(errors: Iterable[dict[str, Any]]) -> ValidationError:
    """FastAPI/pydantic error dicts as our `ValidationError`; the client's input is not echoed."""
    fields = [FieldError(_location(e.get("loc", ())), str(e.get("msg", "is invalid"))) for e in errors]
    return ValidationError(fields)


def as_oof_error(exc: BaseException) -> OofError | None:
    """Our error for an exception we understand, or None for a bug."""
    match exc:
        case OofError():
            return exc
        case RequestValidationError():
            return validation_error(exc.errors())
        case StarletteHTTPException():
            return HttpStatusError(exc.status_code, exc.detail if isinstance(exc.detail, str) else None)
    return None


def _request_id(request: Request) -> str | None:
    value = request.scope.get("oof.request_id")
    return value if isinstance(value, str) else None


def install_exception_handlers(app: FastAPI, on_problem: ProblemHook | None = None) -> None:
    """Render our errors, validation errors and framework HTTP errors as problems inside the router."""

    async def handle(request: Request, exc: Exception) -> Response:
        error = as_oof_error(exc)
        if error is None:  # registered only for classes as_oof_error maps
            raise exc
        if error.status >= 500:
            log.error("http.server_error", problem=error.type_slug, internal=error.internal)
        if on_problem is not None:
            on_problem(error)
        return problem_response(error, request_id=_request_id(request), instance=request.url.path)

    for exc_class in (OofError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(exc_class, handle)


_RESPONSE_MODELS: dict[int, tuple[type[Problem], str]] = {
    401: (AuthProblem, "missing or invalid credentials"),
    403: (Problem, "authenticated, but not allowed"),
    404: (Problem, "no such resource"),
    422: (ValidationProblem, "invalid request fields"),
    429: (RateLimitProblem, "rate limited; see Retry-After and RateLimit headers"),
    500: (Problem, "internal error (no details disclosed)"),
    503: (Problem, "a critical dependency is unavailable"),
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented with its problem model.

    FastAPI files these under `application/json`; `app.py` moves every 4xx/5xx body to
    `application/problem+json` when it builds the OpenAPI document.
    """
    wanted = sorted(set(statuses) | {500})
    return {status: {"model": _RESPONSE_MODELS[status][0], "description": _RESPONSE_MODELS[status][1]} for status in wanted}

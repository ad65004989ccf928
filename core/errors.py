"""Typed errors shared by every layer, each able to render itself as an RFC 9457 problem.

`detail` is written for the client; `internal` (SQL, upstream bodies, stack context) is for
logs only and never appears in `to_problem()`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "PROBLEM_TYPE_BASE",
    "OofError",
    "ConfigProblem",
    "ConfigError",
    "DatabaseError",
    "AuthError",
    "ForbiddenError",
    "FieldError",
    "ValidationError",
    "ExternalServiceError",
    "NotFoundError",
    "RateLimitedError",
    "ParseError",
]

PROBLEM_TYPE_BASE = "https://oof.dev/problems/"


class OofError(Exception):
    """Base of every error we raise on purpose; anything else is a bug and renders as 500."""

    type_slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"
    status: int = 500  # class default, readable without an instance; an instance may override it

    def __init__(self, detail: str | None = None, *, internal: str | None = None, status: int | None = None) -> None:
        self.detail = detail if detail is not None else self.title
        self.internal = internal
        if status is not None:
            self.status = status
        super().__init__(self.detail)

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.type_slug

    def extensions(self) -> dict[str, Any]:
        """Extra client-safe problem members; subclasses add theirs."""
        return {}

    def to_problem(self) -> dict[str, Any]:
        """The `application/problem+json` body. Never includes `internal`."""
        problem: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        problem.update(self.extensions())
        return problem

    def public(self) -> dict[str, Any]:
        """Alias of `to_problem()` for call sites that only want the client-safe view."""
        return self.to_problem()


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One bad setting: where it is (`database.pool_max`, a file, an env var) and what is wrong."""

    location: str
    message: str
    source: str | None = None  # the file or env var that supplied the value, when known

    def __str__(self) -> str:
        origin = f" [from {self.source}]" if self.source and self.source != self.location else ""
        return f"{self.location}: {self.message}{origin}"


class ConfigError(OofError):
    """Start-up configuration is invalid; `str()` lists every problem, one per line."""

    type_slug = "configuration"
    title = "Service misconfigured"

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        # The listing names env vars and files: fine for an operator, not for an HTTP client.
        super().__init__("the service configuration is invalid", internal=self.render())

    def render(self) -> str:
        lines = [f"configuration has {len(self.problems)} problem(s):"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class DatabaseError(OofError):
    """The database failed or is unreachable; the SQL and driver message go in `internal`."""

    type_slug = "database-unavailable"
    status = 503
    title = "Database unavailable"


class AuthError(OofError):
    """Credentials missing or invalid (401). `reason` is a stable code such as `token_expired`."""

    type_slug = "unauthorized"
    status = 401
    title = "Authentication required"

    def __init__(
        self, detail: str | None = None, *, reason: str = "invalid_credentials", internal: str | None = None
    ) -> None:
        self.reason = reason
        super().__init__(detail, internal=internal)

    def extensions(self) -> dict[str, Any]:
        return {"reason": self.reason}


class ForbiddenError(OofError):
    """Authenticated, but not allowed to touch this resource (403)."""

    type_slug = "forbidden"
    status = 403
    title = "Forbidden"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid request field: a dotted location (`query.limit`) and a client-safe message."""

    field: str
    message: str


class ValidationError(OofError):
    """The request is well-formed but its fields are invalid (422), listed in `errors`."""

    type_slug = "validation"
    status = 422
    title = "Invalid request"

    def __init__(
        self, errors: Sequence[FieldError] = (), detail: str | None = None, *, internal: str | None = None
    ) -> None:
        self.errors = list(errors)
        if detail is None and self.errors:
            detail = f"{len(self.errors)} field(s) are invalid"
        super().__init__(detail, internal=internal)

    def extensions(self) -> dict[str, Any]:
        return {"errors": [{"field": e.field, "message": e.message} for e in self.errors]}


class ExternalServiceError(OofError):
    """A dependency (Solana RPC, Jupiter, Dynamic JWKS) failed: 502 bad answer, 503/504 unreachable."""

    type_slug = "upstream-unavailable"
    status = 502
    title = "Upstream service failed"
    allowed_statuses: ClassVar[frozenset[int]] = frozenset({502, 503, 504})

    def __init__(
        self, service: str, detail: str | None = None, *, status: int = 502, internal: str | None = None
    ) -> None:
        if status not in self.allowed_statuses:
            raise ValueError(f"status must be one of {sorted(self.allowed_statuses)}, not {status}")
        self.service = service
        detail = detail if detail is not None else f"{service} is not answering correctly"
        super().__init__(detail, internal=internal, status=status)

    def extensions(self) -> dict[str, Any]:
        return {"service": self.service}


class NotFoundError(OofError):
    """The addressed resource does not exist, or the caller may not know it does (404)."""

    type_slug = "not-found"
    status = 404
    title = "Not found"


class RateLimitedError(OofError):
    """Too many requests (429); `retry_after` whole seconds feed the `Retry-After` header."""

    type_slug = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(self, retry_after: float, detail: str | None = None, *, internal: str | None = None) -> None:
        # Retry-After is delta-seconds (an integer); rounding down would invite an early retry.
        self.retry_after = max(0, math.ceil(retry_after))
        super().__init__(detail if detail is not None else f"retry in {self.retry_after} s", internal=internal)

    def extensions(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class ParseError(OofError):
    """Transaction input we cannot read (missing or malformed fields, unknown encoding)."""

    type_slug = "unparseable-transaction"
    status = 422
    title = "Unreadable transaction"

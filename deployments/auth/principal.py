"""Who is calling: the `Principal` every auth scheme returns, and the guards routes use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from core.errors import AuthError, ForbiddenError

__all__ = ["Principal", "PrincipalKind", "require_user", "require_service"]

PrincipalKind = Literal["user", "service"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a Dynamic user (`id` = `sub`) or an internal service (`id` = service id).

    `claims` is a read-only view of what the credential said (JWT payload, or the HMAC token's
    timestamp/method/path); it takes no part in equality or hashing.
    """

    kind: PrincipalKind
    id: str
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in ("user", "service"):
            raise ValueError(f"principal kind must be 'user' or 'service', not {self.kind!r}")
        if not self.id:
            raise ValueError("principal id must be non-empty")
        # Freeze the containers too: a Principal is shared by every layer of one request.
        object.__setattr__(self, "scopes", frozenset(self.scopes))
        object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))


def _authenticated(principal: Principal | None) -> Principal:
    if principal is None:
        raise AuthError("authentication required", reason="token_missing")
    return principal


def require_user(principal: Principal | None, *scopes: str) -> Principal:
    """The caller as a user holding every one of `scopes`: 401 if anonymous, 403 if a service or short of scopes."""
    principal = _authenticated(principal)
    if principal.kind != "user":
        raise ForbiddenError("this route is for users", internal=f"service {principal.id!r} called a user route")
    if missing := set(scopes) - principal.scopes:
        raise ForbiddenError("the token lacks a required scope", internal=f"missing scopes {sorted(missing)}")
    return principal


def require_service(principal: Principal | None, *service_ids: str) -> Principal:
    """The caller as a service, one of `service_ids` when any are given: 401 if anonymous, 403 otherwise."""
    principal = _authenticated(principal)
    if principal.kind != "service":
        raise ForbiddenError("this route is for internal services", internal=f"user {principal.id!r}")
    if service_ids and principal.id not in service_ids:
        raise ForbiddenError("this service may not call this route", internal=f"service {principal.id!r}")
    return principal

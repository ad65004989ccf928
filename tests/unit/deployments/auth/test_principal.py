"""Principal and the route guards."""

from __future__ import annotations

import pytest

from core.errors import AuthError, ForbiddenError
from deployments.auth import Principal, require_service, require_user

USER = Principal(kind="user", id="u1", scopes=frozenset({"user:basic"}), claims={"sub": "u1"})
SERVICE = Principal(kind="service", id="ingest")


def test_principal_is_frozen_hashable_and_read_only() -> None:
    with pytest.raises(AttributeError):
        USER.id = "u2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        USER.claims["sub"] = "u2"  # type: ignore[index]
    assert {USER, SERVICE} == {Principal(kind="user", id="u1", scopes=frozenset({"user:basic"})), SERVICE}


def test_bad_principals_are_refused() -> None:
    with pytest.raises(ValueError):
        Principal(kind="admin", id="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Principal(kind="user", id="")


def test_require_user() -> None:
    assert require_user(USER, "user:basic") is USER
    with pytest.raises(AuthError) as caught:
        require_user(None)
    assert caught.value.reason == "token_missing"
    with pytest.raises(ForbiddenError):
        require_user(SERVICE)
    with pytest.raises(ForbiddenError):
        require_user(USER, "wallet:export")


def test_require_service() -> None:
    assert require_service(SERVICE) is SERVICE
    assert require_service(SERVICE, "ingest", "admin") is SERVICE
    with pytest.raises(AuthError):
        require_service(None)
    with pytest.raises(ForbiddenError):
        require_service(USER)
    with pytest.raises(ForbiddenError):
        require_service(SERVICE, "admin")

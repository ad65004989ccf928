"""Shared plumbing: the connection type every query takes, and driver-error translation.

Callers above storage only ever see `DatabaseError`: a client-safe `detail`, with the
driver's message (which may quote SQL or values) kept in `internal` for the logs.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.errors import DatabaseError

__all__ = ["Conn", "DRIVER_ERRORS", "translate_errors", "db_call", "rows_affected"]

# A bare connection or one borrowed from a pool; both speak the same query API.
Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy

# TimeoutError and ConnectionError are OSError subclasses.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def translate_errors(detail: str) -> Iterator[None]:
    """Re-raise driver and socket errors as `DatabaseError(detail)`."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise DatabaseError(detail, internal=f"{type(exc).__name__}: {exc}") from exc


def db_call(detail: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorator form of `translate_errors` for repository functions."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            with translate_errors(detail):
                return await fn(*args, **kwargs)

        return call

    return wrap


def rows_affected(status: str) -> int:
    """Row count from a command tag such as `INSERT 0 3` or `UPDATE 2`."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0

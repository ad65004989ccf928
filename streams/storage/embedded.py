"""An embedded PostgreSQL (the `pgserver` package) for running without `DATABASE_URL`.

The server is started with `cleanup_mode=None`: it outlives this process, so the next
start reuses the running server instead of booting one. `stop_embedded` stops it explicitly.
Both calls block (initdb takes a few seconds the first time): run them in a thread from
async code.
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from core.errors import DatabaseError

if TYPE_CHECKING:
    from core.settings import DatabaseSettings

__all__ = ["start_embedded", "stop_embedded", "resolve_dsn"]

# What pgserver raises when initdb / pg_ctl fail or the data dir is unusable.
_START_ERRORS = (OSError, subprocess.SubprocessError, AssertionError)


def _pgserver() -> ModuleType:
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers); harmless here.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            import pgserver
    except ImportError as exc:
        raise DatabaseError(
            "embedded PostgreSQL needs the pgserver package: install it, or set DATABASE_URL",
            internal=str(exc),
        ) from exc
    return pgserver


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) a PostgreSQL server in `data_dir`; returns an asyncpg-ready DSN.

    The DSN uses a unix socket: `postgresql://postgres:@/postgres?host=<socket dir>`.
    """
    pgserver = _pgserver()
    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(data_dir, cleanup_mode=None)
        return str(server.get_uri())
    except _START_ERRORS as exc:
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {data_dir} (see {data_dir / 'log'})",
            internal=f"{type(exc).__name__}: {exc}",
        ) from exc


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server of `data_dir` if this process is its last user; data is kept."""
    pgserver = _pgserver()
    data_dir = data_dir.expanduser().resolve()
    if not (data_dir / "postmaster.pid").exists():
        return  # not running; get_server would start it
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    server.cleanup_mode = "stop"  # cleanup() then stops the server (and forgets it) instead of leaving it up
    try:
        server.cleanup()
    except _START_ERRORS as exc:
        raise DatabaseError("could not stop the embedded PostgreSQL", internal=f"{type(exc).__name__}: {exc}") from exc


def resolve_dsn(db: DatabaseSettings) -> str:
    """The configured URL, or the DSN of an embedded server under `db.embedded_dir`."""
    if db.url is not None:
        return db.url.get_secret_value()
    from core.paths import project_root

    return start_embedded(db.embedded_path(project_root()))

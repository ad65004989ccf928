"""`oof migrate`: apply pending SQL migrations from configs/migrations, then say what changed.

Uses `database.url`, or starts the embedded PostgreSQL when none is configured. Exit 0 when
the schema is current ("up to date" if nothing was pending), 1 when the database cannot be
reached or a migration fails (one line on stderr), 2 on bad configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import DatabaseSettings

from deployments.commands import add_config_option

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--dir", type=Path, default=None, help="migrations directory (default: configs/migrations)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    import asyncio

    from core.errors import ConfigError, DatabaseError
    from deployments.settings_loader import EXIT_BAD_CONFIG, load
    from streams.storage.embedded import resolve_dsn

    env = os.environ if environ is None else environ
    try:
        settings = load(env, args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        dsn = resolve_dsn(settings.database)
        applied = asyncio.run(_migrate(settings.database, dsn, args.dir))
    except DatabaseError as exc:
        # An operator's terminal, not an HTTP client: the driver's first line helps here.
        reason = exc.internal.splitlines()[0] if exc.internal else ""
        print(f"oof migrate: {exc.detail}" + (f" ({reason})" if reason else ""), file=sys.stderr)
        return 1
    if not applied:
        print("up to date")
    for name in applied:
        print(f"applied {name}")
    return 0


async def _migrate(db: DatabaseSettings, dsn: str, directory: Path | None) -> list[str]:
    import asyncpg

    from streams.storage._db import translate_errors
    from streams.storage.migrate import apply_migrations

    with translate_errors("could not connect to the database"):
        conn = await asyncpg.connect(dsn, timeout=db.acquire_timeout_s, command_timeout=db.command_timeout_s)
    try:
        return await apply_migrations(conn, directory)
    finally:
        with translate_errors("could not close the database connection"):
            await conn.close()

"""Apply `configs/migrations/*.sql` in filename order, each file once, recorded with its checksum.

Every file runs in its own transaction under a transaction-scoped advisory lock, so two
processes migrating at once serialise and each file is applied exactly once. A file whose
content changed after it was applied is refused: fix forward with a new file instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from core.errors import DatabaseError
from streams.storage._db import Conn, translate_errors

__all__ = ["Migration", "discover_migrations", "apply_migrations", "default_migrations_dir"]

# Arbitrary but fixed: every OOF process must use the same key ("oofmigr" in ASCII).
_LOCK_KEY = 0x6F6F666D69677200

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT PRIMARY KEY,
    checksum   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str
    checksum: str  # sha256 of the file's bytes


def default_migrations_dir() -> Path:
    from core.paths import project_root

    return project_root() / "configs" / "migrations"


def discover_migrations(directory: Path) -> list[Migration]:
    """The `*.sql` files of `directory`, sorted by name."""
    if not directory.is_dir():
        raise DatabaseError(f"migrations directory not found: {directory}")
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        data = path.read_bytes()
        migrations.append(Migration(path.name, data.decode("utf-8"), hashlib.sha256(data).hexdigest()))
    return migrations


async def apply_migrations(conn_or_pool: Conn | asyncpg.Pool, directory: Path | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied by this call (empty when up to date)."""
    migrations = discover_migrations(directory or default_migrations_dir())
    if isinstance(conn_or_pool, asyncpg.Pool):
        with translate_errors("could not connect to the database"):
            conn = await conn_or_pool.acquire()
        try:
            return await _apply(conn, migrations)
        finally:
            await conn_or_pool.release(conn)
    return await _apply(conn_or_pool, migrations)


async def _apply(conn: Conn, migrations: list[Migration]) -> list[str]:
    with translate_errors("could not prepare the schema_migrations table"):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            await conn.execute(_CREATE_LEDGER)
    applied: list[str] = []
    for migration in migrations:
        if await _apply_one(conn, migration):
            applied.append(migration.name)
    return applied


async def _apply_one(conn: Conn, migration: Migration) -> bool:
    with translate_errors(f"migration {migration.name} failed"):
        async with conn.transaction():
            # Held until commit: a concurrent migrator waits, then sees this file as applied.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            stored = await conn.fetchval("SELECT checksum FROM schema_migrations WHERE name = $1", migration.name)
            if stored is not None:
                if stored != migration.checksum:
                    raise DatabaseError(
                        f"migration {migration.name} was changed after it was applied "
                        "(checksum mismatch); restore the file and add a new migration instead",
                        internal=f"stored sha256 {stored}, file sha256 {migration.checksum}",
                    )
                return False
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", migration.name, migration.checksum
            )
    return True

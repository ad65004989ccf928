"""Shared fixtures for tests against a real PostgreSQL.

Each session works in throwaway databases (`oof_test_<random>`) created through the admin
DSN (`OOF_TEST_ADMIN_DSN`, default the local server's `postgres` database) and dropped at
the end. Without a reachable server these tests fail with the reason: the suite promises
real PostgreSQL, and `.ci/run` starts it first.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
import pytest_asyncio

from core.settings import DatabaseSettings
from streams.storage import apply_migrations, create_pool

ADMIN_DSN = os.environ.get("OOF_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

# Everything a repository test may have written; TRUNCATE between tests keeps them independent.
PIPELINE_TABLES = (
    "transactions", "trade_events", "moments", "price_candles", "shard_checkpoints",
    "source_cursors", "tracked_wallets", "analyze_jobs", "wallet_links", "link_nonces", "followed_token_accounts",
)

DatabaseFactory = Callable[..., Awaitable[str]]  # (migrated: bool = False) -> DSN


def _dsn_for(name: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{name}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_factory() -> AsyncIterator[DatabaseFactory]:
    """Call to get the DSN of a new database (empty, or `migrated=True`); all are dropped after the session."""
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL not reachable at {ADMIN_DSN}: {exc} (start it; see README)", pytrace=False)
    created: list[str] = []

    async def create(migrated: bool = False) -> str:
        name = f"oof_test_{secrets.token_hex(6)}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        dsn = _dsn_for(name)
        if migrated:
            conn = await asyncpg.connect(dsn)
            try:
                await apply_migrations(conn)
            finally:
                await conn.close()
        return dsn

    try:
        yield create
    finally:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db_dsn(database_factory: DatabaseFactory) -> str:
    """A migrated database shared by the session."""
    return await database_factory(migrated=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(DatabaseSettings(pool_min=1, pool_max=12), db_dsn)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection on freshly emptied tables."""
    async with pool.acquire() as connection:
        await connection.execute(f"TRUNCATE {', '.join(PIPELINE_TABLES)}")
        yield connection

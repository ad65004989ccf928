"""Migrations: idempotent, race-free between processes, and strict about edited files."""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from core.errors import DatabaseError
from deployments.commands import migrate as migrate_command
from streams.storage.migrate import apply_migrations, default_migrations_dir, discover_migrations
from tests.integration.conftest import DatabaseFactory

ALL_FILES = [m.name for m in discover_migrations(default_migrations_dir())]

SCHEMA_SNAPSHOT = """
SELECT 'column' AS what, table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable AS detail
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index', indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger', tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
ORDER BY 1, 2
"""


async def schema(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    return [tuple(row) for row in await conn.fetch(SCHEMA_SNAPSHOT)]


async def test_second_run_applies_nothing_and_leaves_schema_unchanged(database_factory: DatabaseFactory) -> None:
    conn = await asyncpg.connect(await database_factory())
    try:
        first = await apply_migrations(conn)
        before = await schema(conn)
        second = await apply_migrations(conn)
        after = await schema(conn)
        ledger = await conn.fetch("SELECT name, checksum FROM schema_migrations ORDER BY name")
    finally:
        await conn.close()

    assert first == ALL_FILES
    assert second == []
    assert before == after
    assert any(what == "trigger" and "moments_notify" in detail for what, detail in before)
    assert [row["name"] for row in ledger] == ALL_FILES
    assert all(len(row["checksum"]) == 64 for row in ledger)


async def test_trade_events_key_upgrade_keeps_rows_of_the_old_schema(
    database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    """A database migrated before 0003 gets the (signature, wallet, ix) key with its rows intact."""
    old = tmp_path / "old"
    old.mkdir()
    for name in ("0001_init.sql", "0002_users.sql"):
        shutil.copy(default_migrations_dir() / name, old / name)
    conn = await asyncpg.connect(await database_factory())
    try:
        await apply_migrations(conn, old)
        await conn.execute("INSERT INTO transactions (signature, slot, fee_payer, wallets, raw)"
                           " VALUES ('sig', 1, 'a', '{a}', '{}')")
        insert = ("INSERT INTO trade_events (signature, ix, slot, wallet, side, mint, amount, quote_mint,"
                  " quote_amount) VALUES ('sig', 0, 1, $1, 'BUY', 'm', 1, 'q', 1)")
        await conn.execute(insert, "a")
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert, "b")  # the old key: one row per (signature, ix)

        upgraded = await apply_migrations(conn)
        await conn.execute(insert, "b")
        again = await apply_migrations(conn)
        stored = await conn.fetch("SELECT wallet, ix FROM trade_events ORDER BY wallet")
        key = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'trade_events_pkey'"
        )
    finally:
        await conn.close()

    assert upgraded == ALL_FILES[2:] and "0003_trade_events_wallet_key.sql" in upgraded
    assert again == []
    assert [tuple(r) for r in stored] == [("a", 0), ("b", 0)]
    assert key == "PRIMARY KEY (signature, wallet, ix)"


async def test_concurrent_migrators_apply_each_file_exactly_once(database_factory: DatabaseFactory) -> None:
    dsn = await database_factory()
    conns = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        counts = await conns[0].fetch("SELECT name, count(*) AS n FROM schema_migrations GROUP BY name ORDER BY name")
    finally:
        await asyncio.gather(*(c.close() for c in conns))

    applied = [name for result in results for name in result]
    assert sorted(applied) == ALL_FILES  # every file once, by whichever process got there first
    assert [(row["name"], row["n"]) for row in counts] == [(name, 1) for name in ALL_FILES]


async def test_pool_argument_is_accepted(database_factory: DatabaseFactory) -> None:
    pool = await asyncpg.create_pool(await database_factory(), min_size=1, max_size=2)
    try:
        assert await apply_migrations(pool) == ALL_FILES
        assert await apply_migrations(pool) == []
    finally:
        await pool.close()


async def test_changed_checksum_is_refused(database_factory: DatabaseFactory, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), directory)
    conn = await asyncpg.connect(await database_factory())
    try:
        await apply_migrations(conn, directory)
        edited = directory / ALL_FILES[0]
        edited.write_text(edited.read_text() + "\n-- edited after release\n")
        (directory / "9999_later.sql").write_text("CREATE TABLE later (x int);")

        with pytest.raises(DatabaseError, match="changed after it was applied") as caught:
            await apply_migrations(conn, directory)
        later_exists = await conn.fetchval("SELECT to_regclass('later') IS NOT NULL")
    finally:
        await conn.close()

    assert "checksum" in caught.value.detail
    assert later_exists is False  # nothing after the refused file ran


async def test_failing_file_rolls_back_and_is_not_recorded(database_factory: DatabaseFactory, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (x int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (x int);\nSELECT no_such_function();")
    conn = await asyncpg.connect(await database_factory())
    try:
        with pytest.raises(DatabaseError) as caught:
            await apply_migrations(conn, tmp_path)
        names = await conn.fetch("SELECT name FROM schema_migrations")
        half_exists = await conn.fetchval("SELECT to_regclass('half') IS NOT NULL")
    finally:
        await conn.close()

    assert caught.value.detail == "migration 0002_bad.sql failed"
    assert "no_such_function" in (caught.value.internal or "")
    assert [row["name"] for row in names] == ["0001_ok.sql"]
    assert half_exists is False


def _args(directory: Path | None = None) -> argparse.Namespace:
    return argparse.Namespace(config=[], dir=directory)


async def test_migrate_command_applies_then_reports_up_to_date(
    database_factory: DatabaseFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"DATABASE_URL": await database_factory()}

    # asyncio.run inside the command needs a thread without a running loop.
    first = await asyncio.to_thread(migrate_command.run, _args(), env)
    first_out = capsys.readouterr().out
    second = await asyncio.to_thread(migrate_command.run, _args(), env)
    second_out = capsys.readouterr().out

    assert first == 0
    assert first_out.splitlines() == [f"applied {name}" for name in ALL_FILES]
    assert second == 0
    assert second_out.strip() == "up to date"


async def test_migrate_command_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres", "OOF_DATABASE__ACQUIRE_TIMEOUT_S": "2"}

    code = await asyncio.to_thread(migrate_command.run, _args(), env)
    err = capsys.readouterr().err

    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("oof migrate: could not connect to the database")
    assert "Traceback" not in err


async def test_migrate_command_bad_configuration_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = await asyncio.to_thread(migrate_command.run, _args(), {"DATABASE_URL": "mysql://nope"})

    assert code == 2
    assert "database.url" in capsys.readouterr().err

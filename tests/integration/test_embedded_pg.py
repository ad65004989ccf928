"""The embedded PostgreSQL: starts in a temporary directory, migrates, stores, and stops.

Runs in the default suite: a fresh data directory takes a few seconds (initdb), a reused one
well under a second.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from core.errors import DatabaseError
from core.models import Moment, MomentKind, MomentStatus
from core.settings import DatabaseSettings
from streams.storage import apply_migrations, get_moment, resolve_dsn, start_embedded, stop_embedded, upsert_moments


def a_moment() -> Moment:
    return Moment(
        id="s2e_embedded", kind=MomentKind.S2E, wallet="W", mint="M", severity=Decimal("0.333333333333333333"),
        pct=Decimal("0.5"), usd_value=Decimal("99.99"), window_start=1_700_000_000, window_end=1_700_600_000,
        sig_ref="sig", slot_ref=1, status=MomentStatus.OPEN, detected_at=1_700_000_060, updated_at=1_700_000_060,
    )


async def test_embedded_server_round_trip(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    dsn = await asyncio.to_thread(start_embedded, data_dir)
    try:
        assert dsn.startswith("postgresql://")
        # resolve_dsn without a URL reuses the server already running in that directory.
        assert await asyncio.to_thread(resolve_dsn, DatabaseSettings(embedded_dir=data_dir)) == dsn

        conn = await asyncpg.connect(dsn)
        try:
            assert len(await apply_migrations(conn)) >= 1
            assert await upsert_moments(conn, [a_moment()]) == 1
            assert await get_moment(conn, a_moment().id) == a_moment()
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(stop_embedded, data_dir)

    assert not (data_dir / "postmaster.pid").exists()
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await asyncpg.connect(dsn, timeout=2)


def test_configured_url_wins_over_embedded(tmp_path: Path) -> None:
    url = "postgresql://oof:secret@db.internal:5432/oof"
    db = DatabaseSettings(url=SecretStr(url), embedded_dir=tmp_path / "never")

    assert resolve_dsn(db) == url
    assert not (tmp_path / "never").exists()


def test_stop_without_a_server_is_a_no_op(tmp_path: Path) -> None:
    stop_embedded(tmp_path / "nothing-here")

    assert not (tmp_path / "nothing-here").exists()


def test_missing_pgserver_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pgserver", None)  # makes `import pgserver` raise ImportError

    with pytest.raises(DatabaseError, match="needs the pgserver package"):
        start_embedded(tmp_path / "pg")

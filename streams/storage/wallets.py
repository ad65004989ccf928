"""Which wallets the pipeline watches, and why (configuration, a user's link, an analyze job)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from streams.storage._db import Conn, db_call, rows_affected

__all__ = ["WalletSource", "track_wallets", "tracked_wallets"]


class WalletSource(StrEnum):
    CONFIG = "config"
    LINKED = "linked"
    ANALYZE = "analyze"


@db_call("could not save tracked wallets")
async def track_wallets(
    conn: Conn, wallets: Iterable[str], source: WalletSource, user_id: str | None = None
) -> int:
    """Start tracking wallets; returns how many were new. The first reason a wallet was added is kept."""
    batch = sorted(set(wallets))
    if not batch:
        return 0
    status = await conn.execute(
        """
        INSERT INTO tracked_wallets (wallet, source, user_id)
        SELECT w, $2, $3 FROM unnest($1::text[]) AS w
        ON CONFLICT (wallet) DO NOTHING
        """,
        batch, WalletSource(source).value, user_id,
    )
    return rows_affected(status)


@db_call("could not read tracked wallets")
async def tracked_wallets(conn: Conn, source: WalletSource | None = None) -> list[str]:
    """All tracked wallets (optionally only those added for `source`), sorted."""
    if source is None:
        rows = await conn.fetch("SELECT wallet FROM tracked_wallets ORDER BY wallet")
    else:
        rows = await conn.fetch(
            "SELECT wallet FROM tracked_wallets WHERE source = $1 ORDER BY wallet", WalletSource(source).value
        )
    return [row["wallet"] for row in rows]

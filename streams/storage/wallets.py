"""Which wallets the pipeline watches, and why (configuration, a user's link, an analyze job);
and the token accounts of theirs the live source follows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from streams.base import TokenAccount
from streams.storage._db import Conn, db_call, rows_affected

__all__ = ["WalletSource", "track_wallets", "tracked_wallets", "follow_token_accounts", "followed_token_accounts"]


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


@db_call("could not save followed token accounts")
async def follow_token_accounts(conn: Conn, accounts: Sequence[TokenAccount]) -> int:
    """Remember token accounts to follow; returns how many were new. An account seen again keeps
    its earliest `since_slot` and takes the newer owner (an account's owner can be reassigned)."""
    batch = sorted({a.account: a for a in accounts}.values(), key=lambda a: a.account)
    if not batch:
        return 0
    rows = await conn.fetch(
        """
        INSERT INTO followed_token_accounts AS f (account, owner, mint, since_slot)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
        ON CONFLICT (account) DO UPDATE SET
            owner = EXCLUDED.owner, mint = EXCLUDED.mint, since_slot = LEAST(f.since_slot, EXCLUDED.since_slot)
        RETURNING (xmax = 0) AS inserted
        """,
        [a.account for a in batch], [a.owner for a in batch], [a.mint for a in batch], [a.since_slot for a in batch],
    )
    return sum(1 for row in rows if row["inserted"])


@db_call("could not read followed token accounts")
async def followed_token_accounts(conn: Conn, owners: Iterable[str]) -> list[TokenAccount]:
    """The followed token accounts of `owners`, by account."""
    rows = await conn.fetch(
        "SELECT account, owner, mint, since_slot FROM followed_token_accounts WHERE owner = ANY($1::text[])"
        " ORDER BY account",
        sorted(set(owners)),
    )
    return [TokenAccount(**dict(row)) for row in rows]

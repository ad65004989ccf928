"""Restart state: shard snapshots and per-wallet source cursors.

Both only move forward: a write carrying an older slot than the stored one is ignored, so
a zombie actor (or a replay racing a live writer) cannot roll a position back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams.storage._db import Conn, db_call, rows_affected

__all__ = ["Checkpoint", "SourceCursor", "save_checkpoint", "load_checkpoint", "set_cursor", "get_cursor"]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    shard: int
    shard_count: int
    snapshot: bytes
    last_slot: int
    last_signature: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SourceCursor:
    """The newest transaction the live source has handed on for a wallet."""

    wallet: str
    last_signature: str
    last_slot: int
    updated_at: datetime


@db_call("could not save the shard checkpoint")
async def save_checkpoint(
    conn: Conn,
    shard: int,
    snapshot: bytes,
    last_slot: int,
    last_signature: str | None,
    *,
    shard_count: int,
) -> bool:
    """Store a shard's snapshot; False when a newer checkpoint (higher slot) is already stored."""
    status = await conn.execute(
        """
        INSERT INTO shard_checkpoints (shard_count, shard, snapshot, last_slot, last_signature)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (shard_count, shard) DO UPDATE SET
            snapshot = EXCLUDED.snapshot,
            last_slot = EXCLUDED.last_slot,
            last_signature = EXCLUDED.last_signature,
            updated_at = now()
        WHERE shard_checkpoints.last_slot <= EXCLUDED.last_slot
        """,
        shard_count, shard, snapshot, last_slot, last_signature,
    )
    return rows_affected(status) == 1


@db_call("could not load the shard checkpoint")
async def load_checkpoint(conn: Conn, shard: int, *, shard_count: int) -> Checkpoint | None:
    row = await conn.fetchrow(
        "SELECT shard, shard_count, snapshot, last_slot, last_signature, updated_at"
        " FROM shard_checkpoints WHERE shard_count = $1 AND shard = $2",
        shard_count, shard,
    )
    return None if row is None else Checkpoint(**dict(row))


@db_call("could not save the source cursor")
async def set_cursor(conn: Conn, wallet: str, last_signature: str, last_slot: int) -> bool:
    """Advance a wallet's cursor; False when the stored cursor is already at a later slot."""
    status = await conn.execute(
        """
        INSERT INTO source_cursors (wallet, last_signature, last_slot) VALUES ($1, $2, $3)
        ON CONFLICT (wallet) DO UPDATE SET
            last_signature = EXCLUDED.last_signature,
            last_slot = EXCLUDED.last_slot,
            updated_at = now()
        WHERE source_cursors.last_slot <= EXCLUDED.last_slot
        """,
        wallet, last_signature, last_slot,
    )
    return rows_affected(status) == 1


@db_call("could not read the source cursor")
async def get_cursor(conn: Conn, wallet: str) -> SourceCursor | None:
    row = await conn.fetchrow(
        "SELECT wallet, last_signature, last_slot, updated_at FROM source_cursors WHERE wallet = $1", wallet
    )
    return None if row is None else SourceCursor(**dict(row))

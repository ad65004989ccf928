"""Transactions and their trade events: batched, idempotent upserts keyed by signature.

A signature can land in a different slot after a fork, so a re-delivered transaction
updates its slot and block time; an identical re-delivery writes nothing. A trade event is
keyed by (signature, wallet, ix): `ix` numbers the trades of one wallet's view of the
transaction, so two wallets trading in one transaction both have ix 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.models import ParsedTransaction, TradeEvent
from streams.storage._db import Conn, db_call, rows_affected
from streams.storage.rows import (
    TRADE_EVENT_COLUMNS,
    json_text,
    to_timestamptz,
    trade_event_columns,
    trade_event_from_row,
)

__all__ = ["upsert_transactions", "upsert_trade_events", "trade_events_for_wallet"]

# executemany, not unnest: `wallets` is an array per row and unnest would flatten it.
_UPSERT_TX = """
INSERT INTO transactions (signature, slot, block_time, fee_payer, wallets, failed, fee_lamports, program, raw)
VALUES ($1, $2, $3, $4, $5::text[], $6, $7, $8, $9::text::jsonb)
ON CONFLICT (signature) DO UPDATE SET
    slot = EXCLUDED.slot,
    block_time = EXCLUDED.block_time,
    raw = EXCLUDED.raw,
    updated_at = now()
WHERE (transactions.slot, transactions.block_time) IS DISTINCT FROM (EXCLUDED.slot, EXCLUDED.block_time)
"""

_TE_TYPES = (
    "text", "integer", "bigint", "timestamptz", "text", "text", "text", "numeric",
    "text", "numeric", "numeric", "text", "bigint",
)
_TE_KEY = ("signature", "wallet", "ix")
_TE_MUTABLE = [c for c in TRADE_EVENT_COLUMNS if c not in _TE_KEY]
_UPSERT_TE = f"""
INSERT INTO trade_events ({", ".join(TRADE_EVENT_COLUMNS)})
SELECT * FROM unnest({", ".join(f"${i}::{t}[]" for i, t in enumerate(_TE_TYPES, start=1))})
ON CONFLICT ({", ".join(_TE_KEY)}) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _TE_MUTABLE)},
    updated_at = now()
WHERE ({", ".join(f"trade_events.{c}" for c in _TE_MUTABLE)})
      IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _TE_MUTABLE)})
"""


@db_call("could not save transactions")
async def upsert_transactions(conn: Conn, items: Sequence[tuple[ParsedTransaction, Mapping[str, Any]]]) -> None:
    """Store parsed transactions with their raw `getTransaction` JSON."""
    # Last copy of a signature wins; sorted so concurrent writers lock rows in one order.
    latest = {parsed.signature: (parsed, raw) for parsed, raw in items}
    args = [
        (
            parsed.signature,
            parsed.slot,
            to_timestamptz(parsed.block_time),
            parsed.signers[0] if parsed.signers else parsed.wallet,  # the fee payer signs first
            list(parsed.signers),
            parsed.failed,
            parsed.fee_lamports,
            parsed.program,
            json_text(raw),
        )
        for parsed, raw in (latest[sig] for sig in sorted(latest))
    ]
    if args:
        await conn.executemany(_UPSERT_TX, args)


@db_call("could not save trade events")
async def upsert_trade_events(conn: Conn, events: Sequence[TradeEvent]) -> int:
    """Store trade events (their transactions must be stored first); returns rows written."""
    # Last copy of a key wins (ON CONFLICT refuses a key twice in one statement); sorted
    # so concurrent writers lock rows in one order.
    latest = {(e.signature, e.wallet, e.ix): e for e in events}
    batch = [latest[key] for key in sorted(latest)]
    if not batch:
        return 0
    return rows_affected(await conn.execute(_UPSERT_TE, *trade_event_columns(batch)))


@db_call("could not read trade events")
async def trade_events_for_wallet(conn: Conn, wallet: str, *, after_slot: int = -1, limit: int = 1000) -> list[TradeEvent]:
    """A wallet's trades after `after_slot`, ordered by (slot, signature, ix)."""
    rows = await conn.fetch(
        f"SELECT {', '.join(TRADE_EVENT_COLUMNS)} FROM trade_events"
        " WHERE wallet = $1 AND slot > $2 ORDER BY slot, signature, ix LIMIT $3",
        wallet, after_slot, limit,
    )
    return [trade_event_from_row(row) for row in rows]

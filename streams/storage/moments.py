"""Moments in PostgreSQL: one batched idempotent upsert, point reads and keyset pages.

A moment row changes only when its content does: an identical replay writes nothing, so
neither `seq` moves nor the NOTIFY trigger fires. A stale version (older `updated_at`, or
`open` arriving after `final`) never overwrites a newer one, which makes at-least-once
delivery from restarted shards harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from core.models import Moment, MomentKind
from streams.storage._db import Conn, db_call, rows_affected
from streams.storage.rows import MOMENT_COLUMNS, moment_columns, moment_from_row, to_timestamptz

__all__ = [
    "MomentCursor", "SequencedMoment", "upsert_moments", "get_moment", "list_moments", "moments_after_seq",
    "moment_counts",
]

_TYPES = (
    "text", "text", "text", "text", "numeric", "numeric", "numeric", "timestamptz", "timestamptz",
    "text", "bigint", "text", "timestamptz", "timestamptz", "text",
)
_UNNEST = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_TYPES, start=1))
_MUTABLE = [c for c in MOMENT_COLUMNS if c != "id"]
_SELECT_COLUMNS = ", ".join(f"u.{c}::jsonb" if c == "explain" else f"u.{c}" for c in MOMENT_COLUMNS)

_UPSERT = f"""
INSERT INTO moments ({", ".join(MOMENT_COLUMNS)})
SELECT {_SELECT_COLUMNS}
FROM unnest({_UNNEST}) AS u({", ".join(MOMENT_COLUMNS)})
ON CONFLICT (id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _MUTABLE)},
    seq = nextval('moments_seq')
WHERE ({", ".join(f"moments.{c}" for c in _MUTABLE)})
      IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _MUTABLE)})
  AND EXCLUDED.updated_at >= moments.updated_at
  AND NOT (moments.status = 'final' AND EXCLUDED.status = 'open')
"""

_SELECT = f"SELECT {', '.join(MOMENT_COLUMNS)}, seq FROM moments"


@dataclass(frozen=True, slots=True)
class MomentCursor:
    """Position after the last moment of a page ordered by (detected_at DESC, id DESC)."""

    detected_at: int
    id: str

    @classmethod
    def after(cls, moment: Moment) -> MomentCursor:
        return cls(moment.detected_at, moment.id)


@dataclass(frozen=True, slots=True)
class SequencedMoment:
    """A moment with its change sequence number (the SSE event id)."""

    seq: int
    moment: Moment


@db_call("could not save moments")
async def upsert_moments(conn: Conn, moments: Sequence[Moment]) -> int:
    """Insert or update moments; returns how many rows were inserted or actually changed."""
    # Last version of an id wins within a batch (ON CONFLICT cannot touch a row twice);
    # sorting by id gives every writer the same lock order, so overlapping batches never deadlock.
    latest = {m.id: m for m in moments}
    batch = [latest[key] for key in sorted(latest)]
    if not batch:
        return 0
    status = await conn.execute(_UPSERT, *moment_columns(batch))
    return rows_affected(status)


@db_call("could not read the moment")
async def get_moment(conn: Conn, moment_id: str) -> Moment | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE id = $1", moment_id)
    return None if row is None else moment_from_row(row)


@db_call("could not list moments")
async def list_moments(
    conn: Conn,
    *,
    wallet: str | None = None,
    wallets: Sequence[str] | None = None,
    kinds: Sequence[MomentKind] | None = None,
    since: int | None = None,
    until: int | None = None,
    min_severity: Decimal | None = None,
    after: MomentCursor | None = None,
    limit: int = 50,
) -> list[Moment]:
    """One page, newest first; `since <= detected_at < until` (unix seconds, event time).

    Pass `MomentCursor.after(page[-1])` as `after` for the next page: keyset pagination is
    stable when moments are inserted meanwhile (no skips, no repeats).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    where: list[str] = []
    args: list[object] = []

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if wallet is not None:
        where.append(f"wallet = {arg(wallet)}")
    if wallets is not None:
        where.append(f"wallet = ANY({arg(list(wallets))}::text[])")
    if kinds is not None:
        where.append(f"kind = ANY({arg([k.value for k in kinds])}::text[])")
    if since is not None:
        where.append(f"detected_at >= {arg(to_timestamptz(since))}")
    if until is not None:
        where.append(f"detected_at < {arg(to_timestamptz(until))}")
    if min_severity is not None:
        where.append(f"severity >= {arg(min_severity)}")
    if after is not None:
        where.append(f"(detected_at, id) < ({arg(to_timestamptz(after.detected_at))}, {arg(after.id)})")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = await conn.fetch(f"{_SELECT}{clause} ORDER BY detected_at DESC, id DESC LIMIT {arg(limit)}", *args)
    return [moment_from_row(row) for row in rows]


@db_call("could not read moment changes")
async def moments_after_seq(
    conn: Conn, after_seq: int, *, wallets: Sequence[str] | None = None, limit: int = 100
) -> list[SequencedMoment]:
    """Moments inserted or changed after `after_seq`, oldest change first (SSE catch-up)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if wallets is None:
        rows = await conn.fetch(f"{_SELECT} WHERE seq > $1 ORDER BY seq LIMIT $2", after_seq, limit)
    else:
        rows = await conn.fetch(
            f"{_SELECT} WHERE seq > $1 AND wallet = ANY($2::text[]) ORDER BY seq LIMIT $3",
            after_seq, list(wallets), limit,
        )
    return [SequencedMoment(row["seq"], moment_from_row(row)) for row in rows]


@db_call("could not count moments")
async def moment_counts(conn: Conn, wallets: Sequence[str]) -> dict[str, int]:
    """How many moments of each kind the database holds for `wallets`."""
    rows = await conn.fetch(
        "SELECT kind, count(*) AS n FROM moments WHERE wallet = ANY($1::text[]) GROUP BY kind ORDER BY kind",
        list(wallets),
    )
    return {row["kind"]: row["n"] for row in rows}

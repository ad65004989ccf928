"""Row <-> model conversion, in one place: unix seconds <-> TIMESTAMPTZ, dicts <-> JSONB.

Decimals go to NUMERIC unchanged (asyncpg's binary codec is exact, scale included); JSON
is written as text and cast to JSONB in SQL, so writes do not depend on which codecs a
connection has registered, and reads accept both a decoded dict and raw text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from asyncpg import Record

from core.codec import decimal_text
from core.models import Moment, MomentKind, MomentStatus, Side, TradeEvent

__all__ = [
    "to_timestamptz",
    "from_timestamptz",
    "json_text",
    "json_value",
    "moment_columns",
    "moment_from_row",
    "trade_event_columns",
    "trade_event_from_row",
    "MOMENT_COLUMNS",
    "TRADE_EVENT_COLUMNS",
]


def to_timestamptz(seconds: int | None) -> datetime | None:
    """Unix seconds (event time) -> aware UTC datetime for a TIMESTAMPTZ column."""
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def from_timestamptz(value: datetime | None) -> int | None:
    """TIMESTAMPTZ -> unix seconds; our columns only ever hold whole seconds."""
    return None if value is None else int(value.timestamp())


def _seconds(value: datetime) -> int:
    return int(value.timestamp())


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_text(value: Any) -> str:
    """JSON text for a JSONB parameter; Decimals become exact strings, keys are sorted."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def json_value(value: Any) -> Any:
    """A JSONB column as Python: decoded already when the pool's codec is registered."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


# Column order shared by `moment_columns` and the upsert SQL in moments.py.
MOMENT_COLUMNS: tuple[str, ...] = (
    "id", "kind", "wallet", "mint", "severity", "pct", "usd_value", "window_start", "window_end",
    "sig_ref", "slot_ref", "status", "detected_at", "updated_at", "explain",
)


def moment_columns(moments: list[Moment]) -> list[list[Any]]:
    """Column-major parameters (one list per column of MOMENT_COLUMNS) for an `unnest` insert."""
    rows = [
        (
            m.id, m.kind.value, m.wallet, m.mint, m.severity, m.pct, m.usd_value,
            to_timestamptz(m.window_start), to_timestamptz(m.window_end), m.sig_ref, m.slot_ref,
            m.status.value, to_timestamptz(m.detected_at), to_timestamptz(m.updated_at), json_text(m.explain),
        )
        for m in moments
    ]
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in MOMENT_COLUMNS]


def moment_from_row(row: Record) -> Moment:
    return Moment(
        id=row["id"],
        kind=MomentKind(row["kind"]),
        wallet=row["wallet"],
        mint=row["mint"],
        severity=row["severity"],
        pct=row["pct"],
        usd_value=row["usd_value"],
        window_start=_seconds(row["window_start"]),
        window_end=_seconds(row["window_end"]),
        sig_ref=row["sig_ref"],
        slot_ref=row["slot_ref"],
        status=MomentStatus(row["status"]),
        detected_at=_seconds(row["detected_at"]),
        updated_at=_seconds(row["updated_at"]),
        explain=json_value(row["explain"]),
    )


TRADE_EVENT_COLUMNS: tuple[str, ...] = (
    "signature", "ix", "slot", "block_time", "wallet", "side", "mint", "amount",
    "quote_mint", "quote_amount", "price_usd", "program", "fee_lamports",
)


def trade_event_columns(events: list[TradeEvent]) -> list[list[Any]]:
    """Column-major parameters (one list per column of TRADE_EVENT_COLUMNS)."""
    rows = [
        (
            e.signature, e.ix, e.slot, to_timestamptz(e.block_time), e.wallet, e.side.value, e.mint, e.amount,
            e.quote_mint, e.quote_amount, e.price_usd, e.program, e.fee_lamports,
        )
        for e in events
    ]
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in TRADE_EVENT_COLUMNS]


def trade_event_from_row(row: Record) -> TradeEvent:
    return TradeEvent(
        signature=row["signature"],
        slot=row["slot"],
        block_time=from_timestamptz(row["block_time"]),
        ix=row["ix"],
        wallet=row["wallet"],
        side=Side(row["side"]),
        mint=row["mint"],
        amount=row["amount"],
        quote_mint=row["quote_mint"],
        quote_amount=row["quote_amount"],
        price_usd=row["price_usd"],
        program=row["program"],
        fee_lamports=row["fee_lamports"],
    )

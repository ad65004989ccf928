"""One-minute OHLCV candles per mint, merged from partial candles on conflict.

The prices actor flushes what it saw of a minute since its last flush; flushes of the
same minute combine: high/low widen, volume and ticks add up, and the partial with the
earliest first slot supplies `open`, the one with the latest last slot supplies `close`.
Because volume adds up, a partial must be flushed once (it is a delta, not a snapshot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from streams.storage._db import Conn, db_call, rows_affected
from streams.storage.rows import from_timestamptz, to_timestamptz

__all__ = ["Candle", "upsert_candles", "load_candles"]


@dataclass(frozen=True, slots=True)
class Candle:
    """What was seen of `mint` during the minute starting at `minute` (unix seconds)."""

    mint: str
    minute: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    ticks: int
    first_slot: int
    last_slot: int

    def __post_init__(self) -> None:
        if self.minute % 60:
            raise ValueError(f"candle minute {self.minute} is not on a minute boundary")

    def merged(self, other: Candle) -> Candle:
        """Both partials as one candle; the same rule the upsert applies in SQL."""
        return Candle(
            mint=self.mint,
            minute=self.minute,
            open=other.open if other.first_slot < self.first_slot else self.open,
            high=max(self.high, other.high),
            low=min(self.low, other.low),
            close=other.close if other.last_slot >= self.last_slot else self.close,
            volume=self.volume + other.volume,
            ticks=self.ticks + other.ticks,
            first_slot=min(self.first_slot, other.first_slot),
            last_slot=max(self.last_slot, other.last_slot),
        )


_UPSERT = """
INSERT INTO price_candles (mint, minute, open, high, low, close, volume, ticks, first_slot, last_slot)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::numeric[], $4::numeric[], $5::numeric[],
                     $6::numeric[], $7::numeric[], $8::integer[], $9::bigint[], $10::bigint[])
ON CONFLICT (mint, minute) DO UPDATE SET
    open = CASE WHEN EXCLUDED.first_slot < price_candles.first_slot THEN EXCLUDED.open ELSE price_candles.open END,
    high = GREATEST(price_candles.high, EXCLUDED.high),
    low = LEAST(price_candles.low, EXCLUDED.low),
    close = CASE WHEN EXCLUDED.last_slot >= price_candles.last_slot THEN EXCLUDED.close ELSE price_candles.close END,
    volume = price_candles.volume + EXCLUDED.volume,
    ticks = price_candles.ticks + EXCLUDED.ticks,
    first_slot = LEAST(price_candles.first_slot, EXCLUDED.first_slot),
    last_slot = GREATEST(price_candles.last_slot, EXCLUDED.last_slot),
    updated_at = now()
"""


@db_call("could not save price candles")
async def upsert_candles(conn: Conn, rows: Sequence[Candle]) -> int:
    """Merge partial candles into stored ones; returns how many (mint, minute) rows were touched."""
    # One row per key per statement (ON CONFLICT cannot touch a row twice), in key order.
    merged: dict[tuple[str, int], Candle] = {}
    for candle in rows:
        key = (candle.mint, candle.minute)
        merged[key] = merged[key].merged(candle) if key in merged else candle
    batch = [merged[key] for key in sorted(merged)]
    if not batch:
        return 0
    columns = [
        [c.mint for c in batch],
        [to_timestamptz(c.minute) for c in batch],
        [c.open for c in batch],
        [c.high for c in batch],
        [c.low for c in batch],
        [c.close for c in batch],
        [c.volume for c in batch],
        [c.ticks for c in batch],
        [c.first_slot for c in batch],
        [c.last_slot for c in batch],
    ]
    return rows_affected(await conn.execute(_UPSERT, *columns))


@db_call("could not read price candles")
async def load_candles(conn: Conn, mint: str, since: int, until: int) -> list[Candle]:
    """Candles of `mint` with `since <= minute < until` (unix seconds), oldest first."""
    rows = await conn.fetch(
        "SELECT mint, minute, open, high, low, close, volume, ticks, first_slot, last_slot FROM price_candles"
        " WHERE mint = $1 AND minute >= $2 AND minute < $3 ORDER BY minute",
        mint, to_timestamptz(since), to_timestamptz(until),
    )
    return [Candle(**{**dict(row), "minute": from_timestamptz(row["minute"])}) for row in rows]

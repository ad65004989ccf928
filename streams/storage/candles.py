"""One-minute OHLCV candles per mint, stored so that writing the same ticks again changes nothing.

The price actor that owns a mint writes, at each checkpoint, its candle of every minute it
touched *as it knows it so far* (cumulative from the first tick it saw of that minute),
and one owner sees a mint's ticks in slot order. So a candle arriving for a stored minute
is one of (E: the arriving candle, S: the stored one, by their slot ranges):

- E covers S (E starts no later and ends no earlier): the same run further on, or a
  replay of the same data (`oof run --fresh`, a restart from an older checkpoint) — E
  replaces S;
- E lies inside S, or is a prefix of it: ticks stored already — nothing changes;
- E is disjoint from S (after it or before it): ticks S has not seen (a minute the actor
  had already closed, a restart without the candle in its checkpoint) — both add up: high
  and low widen, volume and ticks add, the earlier supplies `open`, the later `close`;
- E starts inside S and ends after it: a run that began inside a minute another run had
  stored; how much the two share is unknown, so volume and ticks take the larger of the two
  (a lower bound) and the prices widen.
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
        """Both as one candle when they hold different ticks (volume and ticks add up)."""
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

    def stored_with(self, new: Candle) -> Candle:
        """What the store keeps when `new` arrives for this stored candle: the rule `_UPSERT`
        applies in SQL (see the module's docstring)."""
        if new.last_slot < self.first_slot or new.first_slot > self.last_slot:
            return self.merged(new)
        if new.first_slot <= self.first_slot and new.last_slot >= self.last_slot:
            return new
        if new.last_slot <= self.last_slot:
            return self
        return Candle(self.mint, self.minute, self.open, max(self.high, new.high), min(self.low, new.low),
                      new.close, max(self.volume, new.volume), max(self.ticks, new.ticks),
                      self.first_slot, new.last_slot)


# E: EXCLUDED, S: price_candles (the stored row); the WHERE skips what S holds already.
_DISJOINT = "(EXCLUDED.last_slot < price_candles.first_slot OR EXCLUDED.first_slot > price_candles.last_slot)"
_COVERS = "(EXCLUDED.first_slot <= price_candles.first_slot AND EXCLUDED.last_slot >= price_candles.last_slot)"

_UPSERT = f"""
INSERT INTO price_candles (mint, minute, open, high, low, close, volume, ticks, first_slot, last_slot)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::numeric[], $4::numeric[], $5::numeric[],
                     $6::numeric[], $7::numeric[], $8::integer[], $9::bigint[], $10::bigint[])
ON CONFLICT (mint, minute) DO UPDATE SET
    open = CASE WHEN EXCLUDED.first_slot <= price_candles.first_slot THEN EXCLUDED.open ELSE price_candles.open END,
    high = CASE WHEN {_COVERS} THEN EXCLUDED.high ELSE GREATEST(price_candles.high, EXCLUDED.high) END,
    low = CASE WHEN {_COVERS} THEN EXCLUDED.low ELSE LEAST(price_candles.low, EXCLUDED.low) END,
    close = CASE WHEN EXCLUDED.last_slot >= price_candles.last_slot THEN EXCLUDED.close ELSE price_candles.close END,
    volume = CASE WHEN {_DISJOINT} THEN price_candles.volume + EXCLUDED.volume
                  WHEN {_COVERS} THEN EXCLUDED.volume
                  ELSE GREATEST(price_candles.volume, EXCLUDED.volume) END,
    ticks = CASE WHEN {_DISJOINT} THEN price_candles.ticks + EXCLUDED.ticks
                 WHEN {_COVERS} THEN EXCLUDED.ticks
                 ELSE GREATEST(price_candles.ticks, EXCLUDED.ticks) END,
    first_slot = LEAST(price_candles.first_slot, EXCLUDED.first_slot),
    last_slot = GREATEST(price_candles.last_slot, EXCLUDED.last_slot),
    updated_at = now()
WHERE {_DISJOINT} OR {_COVERS} OR EXCLUDED.last_slot > price_candles.last_slot
"""


@db_call("could not save price candles")
async def upsert_candles(conn: Conn, rows: Sequence[Candle]) -> int:
    """Store candles by the module's rule; returns how many (mint, minute) rows changed."""
    # One row per key per statement (ON CONFLICT cannot touch a row twice), in key order.
    merged: dict[tuple[str, int], Candle] = {}
    for candle in rows:
        key = (candle.mint, candle.minute)
        merged[key] = merged[key].stored_with(candle) if key in merged else candle
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

"""`price_candles` against a real PostgreSQL: the SQL rule is `Candle.stored_with`'s, so what
price actors write again (a replay, a restore) changes nothing and new ticks add up."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import asyncpg
import pytest

from streams.storage import Candle, load_candles, upsert_candles
from tests.scenarios.candle_writes import T0, stored, tick_stream, truth, written

MINT = "Mint333333333333333333333333333333333333333"


def candle(first_slot: int, last_slot: int, open_: str, high: str, low: str, close: str, volume: str) -> Candle:
    return Candle(
        mint=MINT, minute=T0, open=Decimal(open_), high=Decimal(high), low=Decimal(low),
        close=Decimal(close), volume=Decimal(volume), ticks=2, first_slot=first_slot, last_slot=last_slot,
    )


async def _all(conn: asyncpg.Connection, mints: set[str]) -> dict[tuple[str, int], Candle]:
    out = {}
    for mint in sorted(mints):
        for c in await load_candles(conn, mint, T0 - 3600, T0 + 36_000):
            out[(c.mint, c.minute)] = c
    return out


async def test_disjoint_partials_add_up_in_any_order(conn: asyncpg.Connection) -> None:
    middle = candle(20, 29, "1.10", "1.30", "1.05", "1.20", "5")
    late = candle(30, 39, "1.20", "1.25", "0.90", "0.95", "7.5")
    early = candle(10, 19, "1.00", "1.12", "0.99", "1.10", "2.5")

    await upsert_candles(conn, [middle, late])  # two merged within one batch
    await upsert_candles(conn, [early])  # and one arriving late, across batches
    [got] = await load_candles(conn, MINT, T0 - 3600, T0 + 3600)

    assert got == early.merged(middle).merged(late)
    assert (got.open, got.high, got.low, got.close) == tuple(Decimal(v) for v in ("1.00", "1.30", "0.90", "0.95"))
    assert (got.volume, got.ticks, got.first_slot, got.last_slot) == (Decimal("15.0"), 6, 10, 39)


async def test_the_same_candle_again_or_a_part_of_it_changes_nothing(conn: asyncpg.Connection) -> None:
    whole = candle(10, 39, "1.00", "1.30", "0.90", "0.95", "15")
    assert await upsert_candles(conn, [whole]) == 1
    await upsert_candles(conn, [whole])
    assert await upsert_candles(conn, [candle(10, 19, "1.00", "1.12", "0.99", "1.10", "2.5")]) == 0  # a prefix
    assert await upsert_candles(conn, [candle(20, 29, "1.10", "1.30", "1.05", "1.20", "5")]) == 0  # inside
    further = candle(10, 45, "1.00", "1.40", "0.90", "1.35", "16")  # the same minute, further on
    await upsert_candles(conn, [further])
    assert await load_candles(conn, MINT, T0, T0 + 60) == [further]


@pytest.mark.parametrize("seed", [3, 11, 29])
async def test_what_price_actors_write_is_stored_by_the_python_rule(conn: asyncpg.Connection, seed: int) -> None:
    ticks = tick_stream(seed, 150, mints=3)
    rnd = random.Random(seed)
    runs = [written(ticks, {i for i in range(150) if rnd.random() < 0.2}) for _ in range(2)]
    runs.append(written(ticks, {i for i in range(150) if rnd.random() < 0.1}, crash_at=rnd.randrange(150)))
    expected = None
    for writes in runs:  # a run, a replay with other checkpoints, a replay with a crash
        for batch_start in range(0, len(writes), 4):  # a few candles per statement, as a sink batch
            await upsert_candles(conn, [replace(c, mint=MINT + c.mint) for c in writes[batch_start:batch_start + 4]])
        expected = stored([replace(c, mint=MINT + c.mint) for c in writes], expected)
        assert await _all(conn, {MINT + m for m in ("mint0", "mint1", "mint2")}) == expected
    assert expected == {(MINT + k[0], k[1]): replace(c, mint=MINT + c.mint) for k, c in truth(ticks).items()}

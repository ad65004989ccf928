"""Price actors' candles are stored so that the same ticks written again change nothing.

The price actor keeps each open minute's candle cumulative (in its checkpoint too) and writes
the touched ones at every checkpoint; the store (`Candle.stored_with`, mirrored in SQL by
`streams.storage.candles`) replaces, keeps or adds by slot ranges. Whatever the checkpoint
cadence, a crash and restore, or a second run over the same recording (`oof run --fresh`),
every tick is counted once.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.storage import Candle
from tests.scenarios.candle_writes import stored, tick_stream, truth, written

N = 120
cadences = st.sets(st.integers(0, N - 1), max_size=40)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), first=cadences, second=cadences)
def test_every_tick_counts_once_whatever_the_cadence_and_however_often_replayed(
        seed: int, first: set[int], second: set[int]) -> None:
    ticks = tick_stream(seed, N)
    once = stored(written(ticks, first))
    assert once == truth(ticks)
    assert stored(written(ticks, second), once) == once  # replayed with other checkpoints: unchanged
    assert stored(written(ticks, first), once) == once


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=cadences, crash=st.integers(0, N - 1))
def test_a_crash_restored_from_the_last_checkpoint_counts_every_tick_once(seed: int, cuts: set[int], crash: int) -> None:
    ticks = tick_stream(seed, N)
    assert stored(written(ticks, cuts, crash_at=crash)) == truth(ticks)


def test_the_stream_has_late_ticks_into_minutes_already_left() -> None:
    minutes = [t.block_time // 60 for t in tick_stream(7, N)]
    assert any(m < max(minutes[:i]) - 1 for i, m in enumerate(minutes) if i)


def _c(first: int, last: int, volume: str, high: str = "2", low: str = "1") -> Candle:
    return Candle("m", 60, Decimal(low), Decimal(high), Decimal(low), Decimal(high), Decimal(volume),
                  last - first + 1, first, last)


def test_the_store_rule_case_by_case() -> None:
    s = _c(10, 20, "5")
    assert s.stored_with(_c(10, 20, "5")) == s  # the same again
    assert s.stored_with(_c(12, 18, "1")) == s  # inside: seen
    assert s.stored_with(_c(10, 15, "3")) == s  # a prefix: seen
    assert s.stored_with(_c(10, 25, "8")) == _c(10, 25, "8")  # the same minute further on
    assert s.stored_with(_c(30, 31, "2")).volume == Decimal(7)  # disjoint: new ticks add up
    assert s.stored_with(_c(1, 5, "2", high="3")).high == Decimal(3)
    overlap = s.stored_with(_c(15, 30, "4", low="0.5"))  # a run that began inside the minute
    assert (overlap.volume, overlap.low, overlap.first_slot, overlap.last_slot) == (Decimal(5), Decimal("0.5"), 10, 30)

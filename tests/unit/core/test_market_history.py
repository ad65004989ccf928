"""Historical candles as an analyze job's market prices (core.market_history): what is asked for,
where each price goes in the job's event time, and that a crash only the market saw becomes moments."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.engine import Engine
from core.external_prices import OHLCV_WALLET
from core.market_history import (
    JobSpan,
    OhlcvCandle,
    SlotClock,
    candle_points,
    market_views,
    merge_by_slot,
    price_windows,
    split_by_slots,
    window_after_s,
)
from core.mints import SOL_MINT, USDC_MINT
from core.models import MomentKind, MomentStatus
from core.thresholds import Thresholds
from tests.scenarios import World

DAY = 86_400


def _candle(start: int, o: str, h: str, low: str, c: str, mint: str = "Tok") -> OhlcvCandle:
    return OhlcvCandle(mint, start, 900, D(o), D(h), D(low), D(c))


def test_a_candles_prices_are_a_quarter_apart_low_first_when_it_closed_up() -> None:
    up, down = _candle(9_000, "1", "1.5", "0.8", "1.2"), _candle(9_000, "1", "1.5", "0.8", "0.9")
    assert candle_points(up) == [(9_000, 0, D(1)), (9_225, 1, D("0.8")), (9_450, 2, D("1.5")), (9_675, 3, D("1.2"))]
    assert candle_points(down) == [(9_000, 0, D(1)), (9_225, 1, D("1.5")), (9_450, 2, D("0.8")),
                                   (9_675, 3, D("0.9"))]
    # a price equal to the one before it in the candle is dropped (open = low here; flat candle)
    assert candle_points(_candle(0, "1", "2", "1", "2")) == [(0, 0, D(1)), (450, 2, D(2))]
    assert candle_points(_candle(0, "3", "3", "3", "3")) == [(0, 0, D(3))]


def test_the_slot_clock_interpolates_between_the_jobs_slots_and_runs_at_0_4_s_a_slot_outside() -> None:
    clock = SlotClock([(1_000, 10_000), (1_100, 10_040), (1_000, 9_990)])  # (a slot twice: its latest time)
    assert clock.place(10_000) == (1_000, None)  # one of the job's slots: no block time of its own
    assert clock.place(10_001) == (1_002, 10_000)  # 2.5 slots a second between the two, floored
    assert clock.place(10_020) == (1_050, 10_020)
    assert clock.place(10_039) == (1_097, 10_038)  # the slot's own time is never after the price's
    assert clock.place(10_040) == (1_100, None)
    assert clock.place(10_040 + DAY) == (1_100 + DAY * 5 // 2, 10_040 + DAY)  # after the last: 0.4 s a slot
    assert clock.place(10_041) == (1_102, 10_040)
    assert clock.place(9_999) == (997, 9_998)  # before the first: backwards, at or before the price
    assert clock.place(9_600) == (0, 9_600) and clock.place(9_599) is None  # nothing before slot 0
    assert not SlotClock([])


def test_placement_is_monotone_and_never_ahead_of_the_price() -> None:
    clock = SlotClock([(500, 1_000), (503, 1_001), (503, 1_001), (900, 1_200), (901, 1_200), (5_000, 9_000)])
    known = set(clock.slots)
    last_slot, last_time = -1, -1
    for t in range(900, 9_500, 7):
        placed = clock.place(t)
        assert placed is not None
        slot, block_time = placed
        time = clock.times[clock.slots.index(slot)] if block_time is None else block_time
        assert (block_time is None) == (slot in known)
        assert slot >= last_slot and time >= last_time and time <= t
        last_slot, last_time = slot, time


def test_windows_cover_each_trade_from_the_margin_to_the_end_of_its_windows_merged_per_mint() -> None:
    th = Thresholds()
    after = window_after_s(th)
    assert after == 8 * DAY  # 7-day S2E/BHD windows, then 24 h of RUG confirmation
    trades = [("Tok", 100_000), ("Tok", 100_000 + 3 * DAY), ("Tok", 100_000 + 30 * DAY), ("Bonk", 50_000),
              (SOL_MINT, 70_000), ("Bonk", 55_000), ("Aaa", 60_000), ("Aaa", 61_000)]
    windows = price_windows(trades, margin_s=3_600, after_s=after, candle_s=900)
    assert list(windows) == [SOL_MINT, "Tok", "Aaa", "Bonk"]  # SOL, then by trades (ties: by address)
    start = (100_000 - 3_600) // 900 * 900  # rounded down to a candle
    assert windows["Tok"] == [(start, 100_000 + 3 * DAY + after), (start + 30 * DAY, 100_000 + 30 * DAY + after)]
    assert windows["Bonk"] == [(45_900, 55_000 + after)]


def _dense_wait(w: World, seconds: int) -> None:
    """Time and slots move together, 0.4 s a slot, as on the chain."""
    w.wait(seconds)
    w.slot += seconds * 5 // 2


def _bag_holder() -> tuple[World, str, str, int]:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK", decimals=6)
    w.deposit(alice, USDC_MINT, 10)
    _dense_wait(w, DAY)
    buy = w.buy(alice, tok, 1_000, "1")  # $1,000 of TOK; nobody else ever trades it
    _dense_wait(w, 2 * DAY)
    w.transfer(alice, w.market[0], USDC_MINT, 5)
    return w, alice, tok, buy.block_time


def test_the_job_span_lists_its_wallets_trades_and_the_mints_decimals() -> None:
    w, alice, tok, bought_at = _bag_holder()
    span = JobSpan([alice])
    for raw in w.raws():
        span.add(raw)
    assert span.trades == [(tok, bought_at)]  # USDC is $1 by definition: never asked for
    assert span.decimals[tok] == 6 and span.decimals[SOL_MINT] == 9
    assert sorted(span.pairs) == [tx.slot for tx in w.txs]
    assert JobSpan(["someone-else"]).trades == []


def test_a_crash_only_the_market_saw_becomes_a_drawdown_and_a_rug() -> None:
    w, alice, tok, bought_at = _bag_holder()
    raws = w.raws()
    span = JobSpan([alice])
    for raw in raws:
        span.add(raw)
    (lo, hi), = price_windows(span.trades, margin_s=3_600, after_s=window_after_s(Thresholds()), candle_s=900)[tok]
    candles = [_candle(u, *(["1", "1.01", "0.99", "1"] if u < bought_at + 3_600 else ["0.05"] * 4), mint=tok)
               for u in range(lo, hi + 1, 900)]
    views = market_views({tok: candles}, SlotClock(span.pairs.items()), span.decimals)

    assert all(v.wallet == OHLCV_WALLET and v.trades[0].price_usd > 0 for v in views)
    assert [(v.slot, v.signature) for v in views] == sorted((v.slot, v.signature) for v in views)
    assert views[-1].block_time is not None and views[-1].block_time > bought_at + 8 * DAY - 900  # event time moves on
    assert views[0].trades[0].amount == D("0.000001")  # one base unit: no volume to speak of

    items = merge_by_slot(raws, views)
    engine = Engine(tracked=[alice])
    found = {m.id: m for m in engine.process_batch(items) + engine.flush()}
    kinds = {m.kind: m for m in found.values()}
    assert set(kinds) == {MomentKind.BHD, MomentKind.RUG}
    assert kinds[MomentKind.BHD].pct == D("-0.95") and kinds[MomentKind.BHD].status is MomentStatus.FINAL
    assert kinds[MomentKind.RUG].status is MomentStatus.FINAL

    alone = Engine(tracked=[alice])
    assert alone.process_batch(raws) + alone.flush() == []  # the wallet's own swaps show nothing

    again = Engine(tracked=[alice])  # deterministic: the same items, the same moments
    assert {m.id: m for m in again.process_batch(merge_by_slot(raws, views)) + again.flush()} == found


@pytest.mark.parametrize("cuts", [[2], [0, 1, 2], [1]])
def test_views_split_with_the_parts_of_a_history_merge_like_the_whole(cuts: list[int]) -> None:
    w, alice, tok, bought_at = _bag_holder()
    raws = w.raws()
    clock = SlotClock((r["slot"], r["blockTime"]) for r in raws)
    views = market_views({tok: [_candle(u, "1", "2", "0.5", "1.5", mint=tok)
                                 for u in range(bought_at - DAY, bought_at + 3 * DAY, 900)]}, clock, {})
    bounds = [0, *[c + 1 for c in cuts if c + 1 < len(raws)], len(raws)]
    parts = [raws[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    split = list(split_by_slots(views, [part[-1]["slot"] for part in parts]))
    merged = [item for part, extra in zip([*parts, []], split) for item in merge_by_slot(part, extra)]
    assert merged == merge_by_slot(raws, views)

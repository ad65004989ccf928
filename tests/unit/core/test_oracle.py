"""Ticks, the three pricing passes, candles and BAD_ROUTE references."""

from __future__ import annotations

from decimal import Decimal as D

from core.mints import SOL_MINT, USDC_MINT, USDT_MINT
from core.models import Side, Tick, TradeEvent
from core.oracle import PriceBook, RefRequest, reference_price
from core.thresholds import Thresholds

A, B = "TokenA", "TokenB"


def trade(sig: str, side: Side, mint: str, amount: str, quote: str, quote_amount: str, *, wallet: str = "w",
          slot: int = 1, t: int = 1_000) -> TradeEvent:
    q, a = D(quote_amount), D(amount)
    price = q / a if quote in (USDC_MINT, USDT_MINT) else None
    return TradeEvent(sig, slot, t, 0, wallet, side, mint, a, quote, q, price, None, 0)


def book() -> PriceBook:
    return PriceBook(Thresholds())


def test_stable_quoted_trade_is_a_tick_at_quote_over_amount() -> None:
    pb = book()
    out = pb.apply_slot(1, 1_000, [trade("s1", Side.BUY, A, "4", USDC_MINT, "10")])
    st = out.ticks[A]
    assert (st.high, st.low, st.close) == (D("2.5"), D("2.5"), D("2.5"))
    assert st.ticks[0] == Tick(A, D("2.5"), D(4), 1, 1_000, "w", "s1")
    assert pb.latest(A) == D("2.5")
    assert out.legs == {}  # it came priced


def test_sol_quoted_trade_uses_the_slots_sol_price_and_unpriceable_makes_no_tick() -> None:
    pb = book()
    out = pb.apply_slot(1, 1_000, [trade("s1", Side.BUY, A, "100", SOL_MINT, "2")])
    assert out.ticks == {} and out.legs == {}  # no SOL/USD known yet: no tick
    out = pb.apply_slot(2, 1_001, [
        trade("s3", Side.BUY, A, "100", SOL_MINT, "2"),  # sorts after s2 but is priced in pass 2 anyway
        trade("s2", Side.BUY, SOL_MINT, "1", USDC_MINT, "150"),
    ])
    assert out.ticks[SOL_MINT].close == D(150)
    assert out.legs[("s3", "w", 0)].mint == D(3)  # 2 SOL * $150 / 100
    assert pb.latest(A) == D(3)


def test_token_to_token_swap_is_priced_through_the_other_sides_price() -> None:
    pb = book()
    pb.apply_slot(1, 1_000, [trade("s1", Side.BUY, A, "10", USDC_MINT, "20")])  # A = $2
    out = pb.apply_slot(2, 1_001, [trade("s2", Side.SWAP, B, "4", A, "10")])  # gave 10 A for 4 B
    legs = out.legs[("s2", "w", 0)]
    assert legs.mint == D(5)  # B via A: 10 * 2 / 4
    assert legs.quote is None  # B had no price: the A leg is not priced
    assert set(out.ticks) == {B}
    out = pb.apply_slot(3, 1_002, [trade("s3", Side.SWAP, B, "4", A, "10")])
    legs = out.legs[("s3", "w", 0)]
    assert (legs.mint, legs.quote) == (D(5), D(2))  # both sides known now: both legs ticks
    assert set(out.ticks) == {A, B}


def test_swaps_in_one_slot_do_not_price_each_other() -> None:
    pb = book()
    pb.apply_slot(1, 1_000, [trade("s1", Side.BUY, A, "1", USDC_MINT, "1")])
    swaps = [trade("s2", Side.SWAP, B, "1", A, "1"), trade("s3", Side.SWAP, "TokenC", "1", B, "1")]
    out = pb.apply_slot(2, 1_001, swaps)
    assert out.legs[("s3", "w", 0)].mint is None  # B's first price came from a swap in the same slot
    assert set(out.ticks) == {B}


def test_candles_aggregate_ticks_per_minute() -> None:
    pb = book()
    pb.apply_slot(1, 600, [trade("s1", Side.BUY, A, "1", USDC_MINT, "2")])
    pb.apply_slot(2, 630, [trade("s2", Side.BUY, A, "2", USDC_MINT, "10"), trade("s3", Side.SELL, A, "1", USDC_MINT, "1")])
    pb.apply_slot(3, 660, [trade("s4", Side.BUY, A, "1", USDC_MINT, "3")])
    first, second = pb.candles(A, 600, 719)
    assert (first.minute, first.open, first.high, first.low, first.close, first.volume, first.count) == (
        10, D(2), D(5), D(1), D(1), D(4), 3)
    assert (second.minute, second.open, second.close) == (11, D(3), D(3))
    assert pb.peak(A, 600, 659) == D(5) and pb.trough(A, 600, 719) == D(1)
    assert pb.peak(B, 0, 10_000) is None


def _ticks(*rows: tuple[int, str, str]) -> list[Tick]:
    return [Tick(A, D(p), D(1), 1, t, w, f"s{i}") for i, (t, p, w) in enumerate(rows)]


def test_reference_is_the_median_of_other_wallets_ticks_within_the_window() -> None:
    ticks = _ticks((940, "1", "x"), (1_000, "2", "y"), (1_060, "3", "z"), (1_061, "100", "z"), (939, "100", "z"),
                   (1_000, "50", "me"))
    ref = reference_price(ticks, 1_000, "me", 60, 3)
    assert ref is not None and ref.price == D(2) and ref.prices == (D(1), D(2), D(3))
    even = reference_price(_ticks((990, "1", "x"), (995, "2", "y"), (1_000, "4", "z"), (1_005, "8", "x")), 1_000, "me", 60, 3)
    assert even is not None and even.price == D(3)
    assert reference_price(ticks, 1_000, "me", 60, 4) is None  # too few
    assert reference_price(_ticks((1_000, "1", "me"), (1_001, "1", "me"), (1_002, "1", "me")), 1_000, "me", 60, 3) is None


def test_reference_requests_are_answered_once_the_watermark_passes_the_window() -> None:
    pb = book()
    pb.advance(1, 1_000)
    pb.apply_slot(1, 1_000, [trade(f"a{i}", Side.BUY, A, "1", USDC_MINT, "1", wallet=f"o{i}") for i in range(3)])
    pb.request_reference(RefRequest(2, "k", A, 1_000, "me"))
    assert pb.advance(2, 1_060) == []  # t + 60 still inside the window
    pb.apply_slot(2, 1_060, [trade("late", Side.BUY, A, "1", USDC_MINT, "4", wallet="o9")])
    [answer] = pb.advance(3, 5_000)  # a long gap: answered before anything is pruned
    assert answer.reply_to == 2 and answer.key == "k"
    assert answer.reference is not None and answer.reference.price == D("1")  # median of 1, 1, 1, 4
    assert pb.requests == []


def test_history_and_usd() -> None:
    pb = book()
    assert pb.history(A).last_price is None
    pb.apply_slot(1, 1_000, [trade("s1", Side.BUY, A, "1", USDC_MINT, "7")])
    assert pb.history(A).last_price == D(7)
    assert pb.usd(USDC_MINT) == pb.usd(USDT_MINT) == D(1)
    assert pb.usd(A) == D(7)


def test_snapshot_round_trip_is_exact() -> None:
    pb = book()
    pb.advance(1, 1_000)
    pb.apply_slot(1, 1_000, [trade("s1", Side.BUY, SOL_MINT, "1", USDC_MINT, "150"),
                             trade("s2", Side.BUY, A, "3", SOL_MINT, "1")])
    pb.request_reference(RefRequest(0, "k", A, 1_000, "w"))
    copy = PriceBook(Thresholds())
    copy.restore(pb.snapshot())
    assert copy.snapshot() == pb.snapshot()
    assert copy.advance(9, 2_000) == pb.advance(9, 2_000)

"""S2E — sold too early: each rule with its near-miss twin, end to end from raw transactions."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.mints import SOL_MINT
from core.models import MomentKind, MomentStatus
from tests.scenarios import DAY, World

S2E = MomentKind.S2E


def sold(qty: int | str = 100, price: str = "1", **world_kw) -> tuple[World, str, str, int]:
    """Alice bought and then sold `qty` TOK at `price`; returns (world, alice, tok, sell time)."""
    w = World(**world_kw)
    alice, tok = w.wallet("alice"), w.token("TOK")
    w.buy(alice, tok, qty, price)
    w.wait(minutes=5)
    w.sell(alice, tok, qty, price)
    return w, alice, tok, w.time


def test_peak_after_the_sale_crosses_deepens_and_finalises() -> None:
    w, alice, tok, t0 = sold()
    w.wait(days=1)
    w.trade(tok, "1.3")
    w.wait(days=1)
    w.trade(tok, "1.6")
    w.wait(days=6)
    w.heartbeat()
    run = w.run()
    m = run.one(S2E, alice)
    assert m.status is MomentStatus.FINAL
    assert (m.pct, m.usd_value, m.severity) == (D("0.6"), D(60), D("0.3"))
    assert (m.window_start, m.window_end) == (t0, t0 + 7 * DAY)
    assert m.detected_at == t0 + DAY and m.updated_at == t0 + 7 * DAY
    inputs = m.explain["inputs"]
    assert {k: D(v) for k, v in inputs.items()} == {"q": 100, "p_exit": 1, "p_peak": D("1.6"), "t_exit": t0,
                                                     "t_peak": t0 + 2 * DAY}
    assert set(m.explain) == {"rule", "inputs", "thresholds", "result", "state"}
    assert m.explain["state"] == "final"
    states = [(u.status, u.explain["state"], u.pct) for u in run.history(m.id)]
    assert states == [(MomentStatus.OPEN, "crossed", D("0.3")), (MomentStatus.OPEN, "deepened", D("0.6")),
                      (MomentStatus.FINAL, "final", D("0.6"))]


@pytest.mark.parametrize(("peak", "hit"), [("1.25", True), ("1.2499", False)])
def test_pct_threshold(peak: str, hit: bool) -> None:
    w, alice, tok, _ = sold(qty=1_000)  # usd is far above $25 either way
    w.wait(hours=2)
    w.trade(tok, peak)
    assert (not w.run().none(S2E, alice)) is hit


@pytest.mark.parametrize(("qty", "hit"), [(100, True), (99, False)])
def test_usd_threshold(qty: int, hit: bool) -> None:
    w, alice, tok, _ = sold(qty=qty)
    w.wait(hours=2)
    w.trade(tok, "1.25")  # usd = qty * 0.25: 25 vs 24.75
    assert (not w.run().none(S2E, alice)) is hit


@pytest.mark.parametrize(("after", "hit"), [(7 * DAY, True), (7 * DAY + 1, False)])
def test_window_edge(after: int, hit: bool) -> None:
    w, alice, tok, _ = sold()
    w.wait(after)
    w.trade(tok, "2")
    w.wait(days=1)
    w.heartbeat()
    found = w.run().moments(S2E, alice)
    assert bool(found) is hit
    if hit:
        assert found[0].status is MomentStatus.FINAL


def test_a_tick_in_the_same_second_as_the_sale_does_not_count() -> None:
    w, alice, tok, _ = sold()
    w.trade(tok, "2")  # next slot, same block time
    assert w.run().none(S2E, alice)
    w.wait(1)
    w.trade(tok, "2")
    assert w.run().one(S2E, alice).pct == D(1)


def test_end_of_input_leaves_the_window_open() -> None:
    w, alice, tok, t0 = sold()
    w.wait(days=6)
    w.trade(tok, "2")
    m = w.run().one(S2E, alice)
    assert m.status is MomentStatus.OPEN and m.window_end == t0 + 7 * DAY


def test_sol_quoted_sale_is_valued_in_usd() -> None:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    w.sol_price(150)
    w.wait(1)
    w.buy(alice, tok, 100, "0.01", quote=SOL_MINT)  # 1 SOL = $150 for 100 TOK: $1.50 each
    w.wait(1)
    w.sell(alice, tok, 100, "0.01", quote=SOL_MINT)
    w.wait(hours=1)
    w.trade(tok, "2.25")  # USDC-quoted tick: +50 %
    m = w.run().one(S2E, alice)
    assert D(m.explain["inputs"]["p_exit"]) == D("1.5")
    assert (m.pct, m.usd_value) == (D("0.5"), D(75))


def test_the_sold_side_of_a_token_to_token_swap_is_a_sale() -> None:
    w = World()
    alice, tok, other = w.wallet("alice"), w.token("TOK"), w.token("OTHER")
    w.trade(other, "2")  # OTHER = $2
    w.buy(alice, tok, 100, "1")
    w.wait(1)
    w.swap(alice, (tok, 100), (other, 50))  # TOK leg priced through OTHER: 50 * 2 / 100 = $1
    w.wait(hours=1)
    w.trade(tok, "1.5")
    m = w.run().one(S2E, alice, tok)
    assert D(m.explain["inputs"]["p_exit"]) == 1
    assert m.usd_value == D(50)

"""BAD_ROUTE — execution vs the median of other wallets' ticks within ±60 s."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.models import MomentKind, MomentStatus
from tests.scenarios import World

BAD = MomentKind.BAD_ROUTE


def routed(price: str = "1.02", qty: int = 500, *, sell: bool = False, refs: tuple[int, ...] = (-30, 0, 30),
           ref_price: str = "1", judge_at: int | None = 61) -> tuple[World, str, int]:
    """Other wallets trade TOK at `ref_price` at t + each of `refs`; alice trades at t."""
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    if sell:
        w.hold(alice, tok, qty)
    t0 = w.time + 1_000
    events = sorted([(dt, i) for i, dt in enumerate(refs)] + [(0, -1)])
    for dt, i in events:
        w.time = t0 + dt
        w.wait()
        if i < 0:
            (w.sell if sell else w.buy)(alice, tok, qty, price)
        else:
            w.trade(tok, ref_price, by=i % 5)
    if judge_at is not None:
        w.time = t0 + judge_at
        w.wait()
        w.heartbeat()
    return w, alice, t0


def test_a_buy_above_the_reference_is_judged_once_the_window_has_passed() -> None:
    w, alice, t0 = routed()
    m = w.run().one(BAD, alice)
    assert m.status is MomentStatus.FINAL
    assert (m.pct, m.usd_value, m.severity) == (D("0.02"), D(10), D("0.2"))
    assert (m.window_start, m.window_end, m.detected_at) == (t0 - 60, t0 + 60, t0 + 60)
    inputs = m.explain["inputs"]
    assert inputs["ref_ticks"] == 3 and D(inputs["p_ref"]) == 1 and D(inputs["p_exec"]) == D("1.02")


def test_a_sell_below_the_reference() -> None:
    w, alice, _ = routed("0.98", sell=True)
    m = w.run().one(BAD, alice)
    assert (m.pct, m.usd_value) == (D("0.02"), D(10))


@pytest.mark.parametrize(("refs", "hit"), [((-30, 0, 30), True), ((-30, 30), False)])
def test_needs_three_reference_ticks(refs: tuple[int, ...], hit: bool) -> None:
    w, alice, _ = routed(refs=refs)
    assert (not w.run().none(BAD, alice)) is hit


def test_only_the_traders_own_ticks_are_no_reference() -> None:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    for _ in range(3):
        w.buy(alice, tok, 10, "1")
        w.wait(5)
    w.buy(alice, tok, 500, "1.02")
    w.wait(120)
    w.heartbeat()
    assert w.run().none(BAD, alice)


@pytest.mark.parametrize(("price", "qty", "hit"), [
    ("1.01", 500, True),  # pct 0.01, usd 5: both exactly at the threshold
    ("1.0099", 1_000, False),  # pct 0.0099
    ("1.01", 499, False),  # usd 4.99
])
def test_thresholds(price: str, qty: int, hit: bool) -> None:
    w, alice, _ = routed(price, qty)
    assert (not w.run().none(BAD, alice)) is hit


@pytest.mark.parametrize(("refs", "hit"), [((-60, 0, 60), True), ((-61, 0, 60), False), ((-60, 0, 61), False)])
def test_reference_window_is_inclusive(refs: tuple[int, ...], hit: bool) -> None:
    w, alice, _ = routed(refs=refs, judge_at=200)
    assert (not w.run().none(BAD, alice)) is hit


@pytest.mark.parametrize(("judge_at", "hit"), [(None, False), (60, False), (61, True)])
def test_judgement_waits_for_the_watermark(judge_at: int | None, hit: bool) -> None:
    w, alice, _ = routed(judge_at=judge_at)
    assert (not w.run().none(BAD, alice)) is hit


def test_a_fair_price_is_no_moment() -> None:
    w, alice, _ = routed("1.005")
    assert w.run().none(BAD, alice)

"""RUG — collapse from the high since entry, confirmed after 24 h of event time."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.models import MomentKind, MomentStatus
from tests.scenarios import DAY, HOUR, World

RUG = MomentKind.RUG


def entered(qty: int = 100, price: str = "1") -> tuple[World, str, str, str]:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    entry = w.buy(alice, tok, qty, price)
    w.wait(60)
    return w, alice, tok, entry.signature


def test_collapse_confirmed_after_24h_is_final() -> None:
    w, alice, tok, entry = entered()
    w.trade(tok, "2")
    w.wait(HOUR)
    w.trade(tok, "0.3")  # -85 % from the high of 2
    crossed = w.time
    w.wait(DAY + 1)
    w.heartbeat()
    run = w.run()
    m = run.one(RUG, alice)
    assert m.status is MomentStatus.FINAL and m.sig_ref == entry
    assert (m.pct, m.usd_value, m.severity) == (D("-0.85"), D(70), D("0.85"))  # cost 100 - 100 * 0.3
    assert (m.detected_at, m.updated_at, m.window_end) == (crossed, crossed + DAY, crossed + DAY)
    assert [u.explain["state"] for u in run.history(m.id)] == ["collapsed", "confirmed"]


def test_recovery_before_24h_never_becomes_final() -> None:
    w, alice, tok, _ = entered()
    w.trade(tok, "0.1")
    w.wait(12 * HOUR)
    w.trade(tok, "0.5")  # back above -80 %
    w.wait(2 * DAY)
    w.heartbeat()
    m = w.run().one(RUG, alice)
    assert m.status is MomentStatus.OPEN and m.explain["state"] == "recovered"
    assert m.pct == D("-0.5")


def test_a_new_collapse_after_recovery_restarts_the_confirmation() -> None:
    w, alice, tok, _ = entered()
    w.trade(tok, "0.1")
    w.wait(12 * HOUR)
    w.trade(tok, "0.5")
    w.wait(8 * HOUR)
    w.trade(tok, "0.15")
    second = w.time
    w.wait(4 * HOUR + 1)  # the first crossing's 24 h are over, the second's are not
    w.heartbeat()
    assert w.run().one(RUG, alice).status is MomentStatus.OPEN
    w.time = second + DAY + 1
    w.wait()
    w.heartbeat()
    m = w.run().one(RUG, alice)
    assert m.status is MomentStatus.FINAL and m.updated_at == second + DAY


@pytest.mark.parametrize(("low", "hit"), [("0.2", True), ("0.2001", False)])
def test_pct_threshold(low: str, hit: bool) -> None:
    w, alice, tok, _ = entered()
    w.trade(tok, low)
    w.wait(DAY + 1)
    w.heartbeat()
    found = w.run().moments(RUG, alice)
    assert bool(found) is hit
    if hit:
        assert found[0].status is MomentStatus.FINAL and found[0].pct == D("-0.8")


@pytest.mark.parametrize(("qty", "hit"), [(25, True), (24, False)])
def test_cost_basis_threshold(qty: int, hit: bool) -> None:
    w, alice, tok, _ = entered(qty=qty)
    w.trade(tok, "0.01")
    w.wait(DAY + 1)
    w.heartbeat()
    assert (not w.run().none(RUG, alice)) is hit


def test_a_recovery_tick_exactly_24h_later_still_counts() -> None:
    w, alice, tok, _ = entered()
    w.trade(tok, "0.1")
    w.wait(DAY)
    w.trade(tok, "0.9")
    w.wait(1)
    w.heartbeat()
    assert w.run().one(RUG, alice).status is MomentStatus.OPEN


def test_selling_out_before_confirmation_is_not_a_rug() -> None:
    w, alice, tok, _ = entered()
    w.trade(tok, "0.1")
    w.wait(HOUR)
    w.sell(alice, tok, 100, "0.1")
    w.wait(2 * DAY)
    w.heartbeat()
    m = w.run().one(RUG, alice)
    assert m.status is MomentStatus.OPEN and m.explain["state"] == "exited"


def test_selling_below_the_minimum_cost_before_confirmation_cancels() -> None:
    w, alice, tok, _ = entered()
    w.trade(tok, "0.1")
    w.wait(HOUR)
    w.sell(alice, tok, 80, "0.1")  # cost basis left: 20
    w.wait(2 * DAY)
    w.heartbeat()
    m = w.run().one(RUG, alice)
    assert m.status is MomentStatus.OPEN and m.explain["state"] == "below_min_cost"


def test_a_transfer_in_has_no_entry() -> None:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    w.trade(tok, "1")
    w.deposit(alice, tok, "1000")
    w.wait(60)
    w.trade(tok, "0.01")
    w.wait(2 * DAY)
    w.heartbeat()
    assert w.run().none(RUG, alice)


def test_p_high_counts_ticks_from_before_the_position_was_big_enough() -> None:
    w, alice, tok, _ = entered(qty=10)  # cost 10: below the minimum, parked
    w.trade(tok, "2")  # the high since entry
    w.wait(60)
    w.trade(tok, "1.5")
    w.wait(60)
    w.buy(alice, tok, 20, "1.5")  # cost 40: now it counts
    w.wait(60)
    w.trade(tok, "0.35")  # -82.5 % from 2 (but only -65 % from the entry price of 1)
    m = w.run().one(RUG, alice)
    assert m.pct == D("-0.825") and D(m.explain["inputs"]["p_high"]) == 2

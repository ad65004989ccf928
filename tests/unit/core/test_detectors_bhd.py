"""BHD — bag-holder drawdown: thresholds, window edge, and which part of *that* lot was held."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.engine import Engine
from core.models import MomentKind, MomentStatus
from tests.scenarios import DAY, World

BHD = MomentKind.BHD


def bought(qty: int = 100, price: str = "1", **world_kw) -> tuple[World, str, str, int]:
    w = World(**world_kw)
    alice, tok = w.wallet("alice"), w.token("TOK")
    w.buy(alice, tok, qty, price)
    return w, alice, tok, w.time


def test_trough_crosses_deepens_and_finalises() -> None:
    w, alice, tok, t0 = bought()
    w.wait(hours=3)
    w.trade(tok, "0.7")
    w.wait(days=1)
    w.trade(tok, "0.5")
    w.wait(days=7)
    w.heartbeat()
    run = w.run()
    m = run.one(BHD, alice)
    assert m.status is MomentStatus.FINAL
    assert (m.pct, m.usd_value, m.severity) == (D("-0.5"), D(50), D("0.5"))
    assert (m.window_start, m.window_end, m.detected_at, m.updated_at) == (t0, t0 + 7 * DAY, t0 + 3 * 3600, t0 + 7 * DAY)
    assert D(m.explain["inputs"]["held"]) == 100
    assert [u.explain["state"] for u in run.history(m.id)] == ["crossed", "deepened", "final"]


@pytest.mark.parametrize(("low", "hit"), [("0.7", True), ("0.7001", False)])
def test_pct_threshold(low: str, hit: bool) -> None:
    w, alice, tok, _ = bought(qty=1_000)
    w.wait(60)
    w.trade(tok, low)
    assert (not w.run().none(BHD, alice)) is hit


@pytest.mark.parametrize(("qty", "hit"), [(84, True), (83, False)])
def test_usd_threshold(qty: int, hit: bool) -> None:
    w, alice, tok, _ = bought(qty=qty)
    w.wait(60)
    w.trade(tok, "0.7")  # usd = qty * 0.3: 25.2 vs 24.9
    assert (not w.run().none(BHD, alice)) is hit


@pytest.mark.parametrize(("after", "hit"), [(7 * DAY, True), (7 * DAY + 1, False)])
def test_window_edge(after: int, hit: bool) -> None:
    w, alice, tok, _ = bought()
    w.wait(after)
    w.trade(tok, "0.5")
    assert bool(w.run().moments(BHD, alice)) is hit


def test_lot_sold_entirely_before_the_trough_is_no_moment() -> None:
    w, alice, tok, _ = bought()
    w.wait(60)
    w.sell(alice, tok, 100, "0.95")
    w.wait(60)
    w.trade(tok, "0.5")
    assert w.run().none(BHD, alice)


def test_lot_partly_sold_counts_only_what_was_still_held() -> None:
    w, alice, tok, _ = bought()
    w.wait(60)
    w.sell(alice, tok, 50, "0.95")
    w.wait(60)
    w.trade(tok, "0.4")
    m = w.run().one(BHD, alice)
    assert (m.pct, m.usd_value) == (D("-0.6"), D(30))
    assert D(m.explain["inputs"]["held"]) == 50


def test_fifo_a_sale_consumes_the_older_lot_first() -> None:
    w, alice, tok, _ = bought()  # lot A
    w.wait(60)
    second = w.buy(alice, tok, 100, "1")  # lot B
    w.wait(60)
    w.sell(alice, tok, 100, "1")  # all of lot A
    w.wait(60)
    w.trade(tok, "0.5")
    [m] = w.run().moments(BHD, alice)
    assert m.sig_ref == second.signature
    assert m.usd_value == D(50)


def test_a_deeper_trough_after_most_of_the_lot_was_sold_keeps_the_qualifying_one() -> None:
    w, alice, tok, _ = bought()
    w.wait(60)
    w.trade(tok, "0.6")  # held 100: usd 40
    w.wait(60)
    w.sell(alice, tok, 95, "0.6")
    w.wait(60)
    w.trade(tok, "0.1")  # held 5: usd 4.5 < 25
    m = w.run().one(BHD, alice)
    assert (m.pct, m.usd_value) == (D("-0.4"), D(40))


def test_selling_at_the_trough_still_held_it_there() -> None:
    w, alice, tok, _ = bought()
    w.wait(60)
    w.sell(alice, tok, 100, "0.5")  # its own sale is the lowest tick; the lot was held at it
    m = w.run().one(BHD, alice)
    assert (m.pct, m.usd_value) == (D("-0.5"), D(50))


def test_the_bought_side_of_a_token_to_token_swap_is_an_entry() -> None:
    w = World()
    alice, tok, other = w.wallet("alice"), w.token("TOK"), w.token("OTHER")
    w.trade(other, "1")
    w.wait(1)
    w.buy(alice, other, 200, "1")
    w.wait(1)
    w.swap(alice, (other, 200), (tok, 100))  # TOK at 200 * $1 / 100 = $2
    w.wait(60)
    w.trade(tok, "1")
    m = w.run().one(BHD, alice, tok)
    assert D(m.explain["inputs"]["p_entry"]) == 2 and m.usd_value == D(100)


def test_a_coalesced_batch_builds_the_moment_once_in_its_last_state() -> None:
    w, alice, tok, t0 = bought()
    w.wait(hours=3)
    w.trade(tok, "0.7")
    w.wait(hours=1)
    w.trade(tok, "0.6")
    w.wait(hours=1)
    w.trade(tok, "0.5")
    w.wait(60)
    w.heartbeat()  # a later slot: the batch runs the last trade's slot (the end of input closes none)
    per_slot = w.run()
    m = per_slot.one(BHD, alice)
    assert [u.explain["state"] for u in per_slot.history(m.id)] == ["crossed", "deepened", "deepened"]
    engine = Engine(tracked=w.traders)
    batch = engine.process_batch(w.raws(), coalesce=True)
    assert [u for u in batch if u.kind is BHD] == [m]  # one upsert: the deepest trough, as the last per-slot one
    assert engine.stats.upserts["BHD"] == 1  # built once, not three times

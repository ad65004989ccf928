"""IDLE_YIELD — idle SOL/USDC/USDT over 30-day periods from the wallet's first transaction."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.mints import SOL_MINT, USDC_MINT, USDT_MINT
from core.models import MomentKind, MomentStatus, moment_id
from tests.scenarios import DAY, World

IDLE = MomentKind.IDLE_YIELD
PERIOD = 30 * DAY


def expected(balance_usd: str, apr: str, days: int = 30) -> D:
    return D(balance_usd) * D(apr) * days / 365


def deposited(mint: str, amount: str, *, sol_price: str | None = None, close_after: int | None = PERIOD) -> tuple[World, str, int]:
    w = World()
    alice = w.wallet("alice")
    if sol_price is not None:
        w.sol_price(sol_price)
        w.wait(1)
    w.deposit(alice, mint, amount)  # alice is first seen here
    t0 = w.time
    if close_after is not None:
        w.wait(close_after)
        w.heartbeat()
    return w, alice, t0


@pytest.mark.parametrize(("mint", "amount", "hit"), [
    (USDC_MINT, "2434", True), (USDC_MINT, "2433", False), (USDT_MINT, "2434", True), (USDT_MINT, "2433", False)])
def test_stablecoins_just_over_and_under_ten_dollars(mint: str, amount: str, hit: bool) -> None:
    w, alice, t0 = deposited(mint, amount)
    found = w.run().moments(IDLE, alice)
    assert bool(found) is hit
    if hit:
        [m] = found
        assert m.mint == mint and m.status is MomentStatus.FINAL
        assert abs(m.usd_value - expected(amount, "0.05")) < D("1E-8")
        assert m.sig_ref == f"idle:{alice}:{t0}"
        assert m.id == moment_id(IDLE, alice, mint, f"idle:{alice}:{t0}")
        assert (m.window_start, m.window_end, m.detected_at) == (t0, t0 + PERIOD, t0 + PERIOD)
        assert m.severity == (m.usd_value / 1000).quantize(D("1E-4"))  # severity = min(1, usd / 1000)
        assert abs(m.pct - D("0.05") * 30 / 365) < D("1E-8")


@pytest.mark.parametrize(("sol", "hit"), [("11.6", True), ("11.58", False)])
def test_sol_is_valued_at_its_price_from_sol_usdc_swaps(sol: str, hit: bool) -> None:
    w, alice, _ = deposited(SOL_MINT, sol, sol_price="150")
    found = w.run().moments(IDLE, alice)
    assert bool(found) is hit
    if hit:
        assert found[0].mint == SOL_MINT
        assert abs(found[0].usd_value - expected(str(D(sol) * 150), "0.07")) < D("1E-8")


def test_sol_without_a_price_is_unpriced_not_guessed() -> None:
    w, alice, _ = deposited(SOL_MINT, "1000")
    assert w.run().none(IDLE, alice)


def test_an_unclosed_period_emits_nothing() -> None:
    w, alice, _ = deposited(USDC_MINT, "100000", close_after=PERIOD - 1)
    assert w.run().none(IDLE, alice)


def test_balance_is_time_weighted_from_first_seen() -> None:
    w = World()
    alice = w.wallet("alice")
    w.swap(alice, (USDC_MINT, 1), (USDT_MINT, 1), failed=True)  # first seen, nothing held
    w.wait(days=15)
    w.deposit(alice, USDC_MINT, "10000")
    w.wait(days=15)
    w.heartbeat()
    m = w.run().one(IDLE, alice)
    assert abs(m.usd_value - expected("10000", "0.05", days=15)) < D("1E-8")


def test_each_closed_period_is_its_own_moment() -> None:
    w, alice, t0 = deposited(USDC_MINT, "10000", close_after=2 * PERIOD)
    found = sorted(w.run().moments(IDLE, alice), key=lambda m: m.window_start)
    assert [m.window_start for m in found] == [t0, t0 + PERIOD]
    assert len({m.id for m in found}) == 2


def test_spending_the_balance_stops_the_clock() -> None:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    w.deposit(alice, USDC_MINT, "10000")
    w.wait(days=10)
    w.buy(alice, tok, 10_000, "1")  # all of it into a token
    w.wait(days=20)
    w.heartbeat()
    m = w.run().one(IDLE, alice)
    assert abs(m.usd_value - expected("10000", "0.05", days=10)) < D("1E-8")

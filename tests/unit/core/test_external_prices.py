"""External (Jupiter Price v3) prices enter the engine as ticks of a pseudo-wallet: the same interface as swaps."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from core.engine import Engine
from core.external_prices import ORACLE_WALLET, price_view
from core.mints import SOL_MINT, USDC_MINT, USDT_MINT
from core.models import MomentKind, MomentStatus
from tests.scenarios import World


def _run(w: World, tracked: set[str], extra: list[tuple[int, Any]]) -> tuple[Engine, list[Any]]:
    """The world's transactions with `extra` views (slot, view) merged in slot order."""
    engine = Engine(tracked=tracked)
    items = sorted([(tx.slot, 0, tx.result) for tx in w.txs] + [(slot, 1, v) for slot, v in extra],
                   key=lambda item: (item[0], item[1]))
    upserts = engine.process_batch([item for _, _, item in items]) + engine.flush()
    return engine, upserts


@pytest.mark.parametrize(("low", "hit"), [("0.5", True), ("0.7001", False)])
def test_a_jupiter_price_alone_opens_a_bag_holder_drawdown(low: str, hit: bool) -> None:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    w.buy(alice, tok, 100, "1")
    w.wait(hours=1)
    later = w.heartbeat().slot  # nobody else trades TOK: only Jupiter knows its price now
    _, upserts = _run(w, {alice}, [(later, price_view(tok, D(low), slot=later, seq=1, decimals=6))])
    bhd = [m for m in upserts if m.kind is MomentKind.BHD]
    assert bool(bhd) is hit
    if hit:
        (m,) = bhd
        assert (m.wallet, m.mint, m.status, m.pct, m.usd_value) == (alice, tok, MomentStatus.OPEN, D("-0.5"), D(50))


def test_a_jupiter_sol_price_prices_the_slots_sol_quoted_trades() -> None:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    slot = w.buy(alice, tok, 1_000, "0.01", quote=SOL_MINT).slot  # 10 SOL for 1,000 TOK; no SOL/USD swap anywhere
    unpriced, _ = _run(w, {alice}, [])
    assert unpriced.book.latest(tok) is None
    priced, _ = _run(w, {alice}, [(slot, price_view(SOL_MINT, D("150.25"), slot=slot, seq=1, decimals=9))])
    assert priced.book.latest(SOL_MINT) == D("150.25")
    assert priced.book.latest(tok) == D("1.5025")  # 0.01 SOL each at Jupiter's SOL/USD
    assert priced.stats.ticks == 2


def test_the_view_is_one_base_unit_bought_for_its_usd_price_by_an_untracked_pseudo_wallet() -> None:
    view = price_view("TokMint", D("0.000123"), slot=7, seq=3, decimals=6, block_id=99)
    assert view is not None and view.wallet == ORACLE_WALLET and view.block_time is None and view.slot == 7
    (trade,) = view.trades
    assert (trade.amount, trade.quote_mint, trade.price_usd) == (D("0.000001"), USDC_MINT, D("0.000123"))
    assert trade.quote_amount / trade.amount == D("0.000123")  # exact: no float anywhere
    assert view.signature == "jupiter-price-v3:TokMint:000000000099:00000000000000000003"
    assert price_view("TokMint", D(1), slot=7, seq=4).signature != view.signature  # one view per observation


def test_stablecoins_get_no_external_price_and_a_non_price_is_refused() -> None:
    assert price_view(USDC_MINT, D(1), slot=1, seq=1) is None
    assert price_view(USDT_MINT, D("0.999"), slot=1, seq=1) is None
    for bad in (D(0), D(-1), D("NaN"), D("Infinity")):
        with pytest.raises(ValueError, match="not a price"):
            price_view("TokMint", bad, slot=1, seq=1)


def test_the_same_observation_twice_is_one_tick() -> None:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    slot = w.buy(alice, tok, 100, "1").slot
    view = price_view(tok, D("0.9"), slot=slot, seq=1, decimals=6)
    engine, _ = _run(w, {alice}, [(slot, view), (slot, view)])
    assert engine.stats.duplicates == 1 and engine.stats.ticks == 2  # alice's buy and one Jupiter tick

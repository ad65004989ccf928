"""Compact pickling keeps every value exact (and a bare-TradeEvent view arrives as what it stands for)."""

from __future__ import annotations

import pickle
from decimal import Decimal

import actors.protocol  # noqa: F401 - registers the reducers
from core.engine import Engine
from core.models import ParsedTransaction, Side, Tick, TradeEvent

TRADE = TradeEvent("sig", 5, None, 2, "w", Side.SWAP, "m", Decimal("1.2300"), "q", Decimal("1E-9"), None, "jup", 5000)


def test_trades_ticks_and_views_round_trip_exactly() -> None:
    tick = Tick("m", Decimal("0.000012340"), Decimal(7), 5, 100, "w", "sig")
    view = ParsedTransaction("sig", 5, 100, "w", ("w", "x"), False, 5000, "jup", {"m": Decimal("-1.50")}, (TRADE,))
    for value in (TRADE, tick, view):
        back = pickle.loads(pickle.dumps(value, protocol=5))
        assert back == value and type(back) is type(value)
    assert str(pickle.loads(pickle.dumps(TRADE)).amount) == "1.2300"  # the same Decimal, digits included


def test_an_event_view_arrives_as_a_parsed_transaction() -> None:
    engine = Engine()
    engine.process(TRADE)
    view = engine._buf[0]  # the engine's view of a bare TradeEvent
    back = pickle.loads(pickle.dumps(view))
    assert isinstance(back, ParsedTransaction)
    assert (back.signature, back.wallet, back.trades, back.flows, back.failed) == ("sig", "w", (TRADE,), {}, False)

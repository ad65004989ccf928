"""Checkpoint serialisation: exact round trips, versioned envelopes."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.models import ParsedTransaction, Side, Tick, TradeEvent
from core.snapshot import (
    decode_parsed,
    decode_tick,
    decode_trade,
    dumps,
    encode_parsed,
    encode_tick,
    encode_trade,
    loads,
)

TRADE = TradeEvent("sig", 5, None, 1, "w", Side.SWAP, "m", D("1.000000"), "q", D("1E-9"), None, "jupiter_v6", 5000)


def test_models_round_trip_exactly_through_json() -> None:
    parsed = ParsedTransaction("sig", 5, 1_000, "w", ("w", "x"), False, 5000, None, {"m": D("-0.10")}, (TRADE,))
    tick = Tick("m", D("0.123456789012345678901234567"), D(3), 5, 1_000, "w", "sig")
    again = loads("t", dumps("t", {"trade": encode_trade(TRADE), "parsed": encode_parsed(parsed), "tick": encode_tick(tick)}))
    assert decode_trade(again["trade"]) == TRADE
    assert str(decode_trade(again["trade"]).amount) == "1.000000"  # the exponent survives too
    assert decode_parsed(again["parsed"]) == parsed
    assert decode_tick(again["tick"]) == tick


def test_dumps_is_deterministic_and_loads_checks_the_envelope() -> None:
    body = {"b": [1, D("2.50")], "a": {"x": None}}
    assert dumps("k", body) == dumps("k", dict(body))
    assert loads("k", dumps("k", body)) == {"b": [1, "2.50"], "a": {"x": None}}
    with pytest.raises(ValueError):
        loads("other", dumps("k", body))
    with pytest.raises(ValueError):
        loads("k", dumps("k", body).replace(b'"v":1', b'"v":2'))

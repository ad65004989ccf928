"""The hot-path constructors and shortcuts give exactly what the plain spelling gives."""

from __future__ import annotations

import random
from decimal import Context
from decimal import Decimal as D

from core.detectors.base import build_moment, decimal_text, make_moment
from core.engine import _EventView
from core.models import Moment, MomentKind, MomentStatus, Side, Tick, TradeEvent, moment_id
from core.positions import Positions
from core.ticks import MintBook, new_tick

_WIDE = Context(prec=60)


def _reference_text(value: D) -> str:
    return format(value.normalize(_WIDE), "f")


def test_decimal_text_is_the_normalised_fixed_point_text() -> None:
    rng = random.Random(5)
    values = [D("0"), D("-0"), D("0E-8"), D("0.000"), D("100"), D("1E+2"), D("1.2E+3"), D("1.50"), D("-1.50"),
              D("0.0000001"), D("1E-7"), D("123.000"), D("-0.00"), D("1" + "0" * 70), D("1." + "1" * 70),
              D("NaN"), D("Infinity"), D("-Infinity")]
    for _ in range(20_000):
        kind = rng.randrange(4)
        if kind == 0:
            v = D(rng.randrange(-10**6, 10**6)) / D(rng.choice([1, 3, 7, 10, 100, 1000, 50000]))
        elif kind == 1:
            v = D(f"{rng.uniform(-1e6, 1e6):.{rng.randrange(0, 12)}f}")
        elif kind == 2:
            v = D(rng.randrange(10**rng.randrange(1, 40))).scaleb(rng.randrange(-40, 10))
        else:
            v = -D(rng.randrange(0, 10**rng.randrange(1, 80))).scaleb(-rng.randrange(0, 90))
        values.append(v)
    for v in values:
        assert decimal_text(v) == _reference_text(v), v


def test_new_tick_is_a_tick() -> None:
    fast = new_tick("mint", D("1.5"), D(2), 3, 4, "wallet", "sig")
    plain = Tick("mint", D("1.5"), D(2), 3, 4, "wallet", "sig")
    assert type(fast) is Tick and fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)


def test_make_moment_is_build_moment() -> None:
    kind = MomentKind.S2E
    inputs = {"q": D("100"), "p_exit": D("1.50"), "t": 7, "lot": "s:0"}
    thresholds = {"min_pct": "0.25"}
    built = build_moment(kind, wallet="w", mint="m", sig_ref="s", slot_ref=9, pct=D("0.3333333333333333333"),
                         usd=D("-1"), severity=D("0.16666666666666666"), window=(1, 2),
                         status=MomentStatus.OPEN, detected_at=3, updated_at=4, rule="r", inputs=inputs,
                         thresholds=thresholds, state="crossed")
    made = make_moment(moment_id(kind, "w", "m", "s"), kind, "w", "m", "s", 9, D("0.3333333333333333333"), D("-1"),
                       D("0.16666666666666666"), 1, 2, MomentStatus.OPEN, 3, 4, "r",
                       {k: decimal_text(v) if isinstance(v, D) else v for k, v in inputs.items()}, thresholds,
                       "crossed")
    assert type(made) is Moment and made == built and repr(made) == repr(built)
    assert made.usd_value == 0 and made.explain["inputs"]["p_exit"] == "1.5"
    assert made.explain["thresholds"] is not thresholds  # every moment owns its explain


def test_event_view_reads_as_a_one_trade_transaction() -> None:
    event = TradeEvent("sig", 5, 60, 1, "w", Side.SELL, "m", D(1), "q", D(2), None, "prog", 5000)
    view = _EventView(event)
    for name in ("signature", "slot", "block_time", "wallet", "fee_lamports", "program"):
        assert getattr(view, name) == getattr(event, name), name
    assert view.trades == (event,) and view.trades[0] is event and view.signers == ()
    assert not view.failed and not view.flows


def test_add_at_is_add_and_basis_cost_is_basis() -> None:
    a, b = MintBook(), MintBook()
    for i, price in enumerate(("2", "1", "3", "2.5")):
        tick = Tick("m", D(price), D(i + 1), i, 600 + 20 * i, "w", f"s{i}")
        a.add(tick, 600)
        b.add_at(tick, tick.price_usd, tick.amount, tick.block_time, tick.block_time // 60, 600)
    assert a.to_dict() == b.to_dict()
    p = Positions()
    p.acquire("w", "m", D(10), D(25), "s:0", 1, 1, ("s", D("2.5")))
    assert p.basis_cost("w", "m") == p.basis("w", "m")[1] == D(25) and p.basis_cost("w", "x") == 0


def test_a_builder_twin_becomes_the_frozen_class() -> None:
    import dataclasses

    import pytest

    from core._frozen import builder

    @dataclasses.dataclass(frozen=True, slots=True)
    class Point:
        mint: str
        price: D
        slot: int

    twin = builder(Point)
    t = object.__new__(twin)
    for name, value in zip(Point.__slots__, ("m", D(1), 3)):
        setattr(t, name, value)
    t.__class__ = Point
    assert type(t) is Point and t == Point("m", D(1), 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.mint = "other"  # type: ignore[misc]

    @dataclasses.dataclass(frozen=True, slots=True)
    class Other:
        a: int

    class Wider:
        __slots__ = ("a", "b")

    with pytest.raises(TypeError):
        builder_of_wider = builder(Other)
        w = object.__new__(Wider)
        w.__class__ = Other  # layouts differ: refused, as builder() would refuse at import
    assert builder_of_wider.__slots__ == ("a",)

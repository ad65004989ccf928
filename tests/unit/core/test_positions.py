"""FIFO lots with cost basis, entries and transfers."""

from __future__ import annotations

from decimal import Decimal as D

from core.positions import Positions

W, M = "wallet", "mint"


def _buy(p: Positions, key: str, amount: str, price: str, t: int = 0) -> bool:
    a, px = D(amount), D(price)
    return p.acquire(W, M, a, a * px, key, slot=t, time=t, entry=(key.split(":")[0], px))


def test_buy_opens_entry_once_per_holding_episode() -> None:
    p = Positions()
    assert _buy(p, "s1:0", "100", "1")
    assert not _buy(p, "s2:0", "50", "2")  # same episode: entry stays s1
    entry = p.entry(W, M)
    assert entry is not None and entry.signature == "s1" and entry.price == D(1)
    assert p.balance(W, M) == D(150)
    assert p.basis(W, M) == (D(150), D(200))


def test_sell_consumes_lots_first_in_first_out_with_cost_pro_rata() -> None:
    p = Positions()
    _buy(p, "s1:0", "100", "1")
    _buy(p, "s2:0", "100", "3")
    assert p.dispose(W, M, D(150)) == D(150)
    assert p.remaining(W, M, "s1:0") == 0  # the older lot went first
    assert p.remaining(W, M, "s2:0") == D(50)
    assert p.basis(W, M) == (D(50), D(150))
    assert p.entry(W, M).signature == "s1"  # still the same episode


def test_emptying_a_position_ends_the_episode() -> None:
    p = Positions()
    _buy(p, "s1:0", "10", "1")
    p.dispose(W, M, D(10))
    assert p.position(W, M) is None and p.entry(W, M) is None
    assert _buy(p, "s3:0", "5", "2")
    assert p.entry(W, M).signature == "s3"


def test_transfer_in_has_no_cost_basis_and_no_entry() -> None:
    p = Positions()
    assert not p.acquire(W, M, D(40), None, "t1:t", 1, 1)
    assert p.entry(W, M) is None
    assert p.balance(W, M) == D(40)
    assert p.basis(W, M) == (0, 0)
    assert _buy(p, "s1:0", "10", "2")  # the first BUY after a transfer opens the entry
    p.dispose(W, M, D(45))  # FIFO: the transfer lot first, then 5 of the bought lot
    assert p.basis(W, M) == (D(5), D(10))


def test_disposing_more_than_known_empties_without_going_negative() -> None:
    p = Positions()
    _buy(p, "s1:0", "10", "1")
    assert p.dispose(W, M, D(25)) == D(10)
    assert p.balance(W, M) == 0
    assert p.dispose(W, M, D(5)) == 0


def test_round_trip_is_exact() -> None:
    p = Positions()
    _buy(p, "s1:0", "1.5", "0.3333")
    p.acquire(W, "other", D("7"), None, "t:t", 2, 2)
    p.dispose(W, M, D("0.7"))
    copy = Positions.from_dict(p.to_dict())
    assert copy.to_dict() == p.to_dict()
    assert copy.basis(W, M) == p.basis(W, M)
    assert copy.remaining(W, M, "s1:0") == D("0.8")

"""Per-wallet FIFO lots with a USD cost basis, one position per (wallet, mint).

Every change of a wallet's holdings goes through `acquire` or `dispose`:
- a priced BUY (and the bought side of a token→token swap) adds a lot with a cost basis
  and remembers its signature: the first one since the position was last empty is the
  position's *entry* (RUG's `sig_ref`);
- a quote received by a SELL adds a lot whose cost is the USD value received;
- a transfer in (or anything the parser could not price) adds a lot without cost basis
  and never an entry;
- a SELL, a quote spent, or a transfer out consumes lots first-in first-out, cost basis
  pro rata. Disposing more than we know of empties the position (the wallet held
  tokens from before it was first seen); it never goes negative.

Lots keep their key (`signature:ix`, …) so BHD can ask how much of *that* lot is still
held. Balances are what the stream has shown since the wallet was first seen, which is
also what IDLE_YIELD integrates.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from core.snapshot import opt_dec

__all__ = ["Lot", "Entry", "Position", "Positions"]

ZERO: Final = Decimal(0)


# A lot: (key, amount still held, USD cost basis of what is still held or None, slot, time).
# A tuple, replaced when a sale takes part of it: cheaper to make than an object, and the
# cyclic GC stops tracking a tuple of plain values, which matters for state this long-lived.
Lot = tuple[str, Decimal, Decimal | None, int, int]


def _lot_list(lot: Lot) -> list[Any]:
    key, amount, cost, slot, time = lot
    return [key, str(amount), None if cost is None else str(cost), slot, time]


class Entry:
    """The BUY that opened the current holding episode."""

    __slots__ = ("signature", "slot", "time", "price")

    def __init__(self, signature: str, slot: int, time: int, price: Decimal) -> None:
        self.signature = signature
        self.slot = slot
        self.time = time
        self.price = price

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and (self.signature, self.slot, self.time, self.price) == (
            other.signature, other.slot, other.time, other.price)

    def __repr__(self) -> str:
        return f"Entry(signature={self.signature!r}, slot={self.slot}, time={self.time}, price={self.price!r})"


class Position:
    """A wallet's lots of one mint, oldest first, with running totals."""

    __slots__ = ("lots", "head", "base", "by_key", "amount", "basis_amount", "basis_cost", "entry_sig",
                 "entry_slot", "entry_time", "entry_price")

    def __init__(self) -> None:
        self.lots: list[Lot] = []  # lots[head:] are held, oldest first (a list: a deque costs ~600 bytes)
        self.head = 0
        self.base = 0  # how many lots were dropped from the front of `lots` so far
        self.by_key: dict[str, int] = {}  # key -> the lot's index counted from the first lot ever (base + i)
        self.amount = ZERO
        self.basis_amount = ZERO  # amount held in lots that have a cost basis
        self.basis_cost = ZERO
        # the entry (see `entry`), field by field: no object per position
        self.entry_sig: str | None = None
        self.entry_slot = 0
        self.entry_time = 0
        self.entry_price = ZERO

    @property
    def entry(self) -> Entry | None:
        sig = self.entry_sig
        return None if sig is None else Entry(sig, self.entry_slot, self.entry_time, self.entry_price)

    def to_dict(self) -> dict[str, Any]:
        e = self.entry
        return {
            "lots": [_lot_list(lot) for lot in self.lots[self.head:]],
            "totals": [str(self.amount), str(self.basis_amount), str(self.basis_cost)],
            "entry": None if e is None else [e.signature, e.slot, e.time, str(e.price)],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Position:
        pos = cls()
        for key, amount, cost, slot, time in d["lots"]:
            pos.by_key[key] = len(pos.lots)
            pos.lots.append((key, Decimal(amount), opt_dec(cost), slot, time))
        pos.amount, pos.basis_amount, pos.basis_cost = (Decimal(v) for v in d["totals"])
        e = d["entry"]
        if e is not None:
            pos.entry_sig, pos.entry_slot, pos.entry_time, pos.entry_price = e[0], e[1], e[2], Decimal(e[3])
        return pos


class Positions:
    """All positions of the wallets one shard owns."""

    __slots__ = ("_wallets",)

    def __init__(self) -> None:
        self._wallets: dict[str, dict[str, Position]] = {}

    def position(self, wallet: str, mint: str) -> Position | None:
        mints = self._wallets.get(wallet)
        return None if mints is None else mints.get(mint)

    def acquire(
        self,
        wallet: str,
        mint: str,
        amount: Decimal,
        cost: Decimal | None,
        key: str,
        slot: int,
        time: int,
        entry: tuple[str, Decimal] | None = None,
    ) -> bool:
        """Add a lot. `entry` = (signature, price) of a priced BUY, which opens the
        position's entry when it has none; True if it did."""
        if amount <= ZERO:
            return False
        mints = self._wallets.get(wallet)
        if mints is None:
            mints = self._wallets[wallet] = {}
        pos = mints.get(mint)
        if pos is None:
            pos = mints[mint] = Position()
        lots = pos.lots
        pos.by_key[key] = pos.base + len(lots)
        lots.append((key, amount, cost, slot, time))
        pos.amount += amount
        if cost is not None:
            pos.basis_amount += amount
            pos.basis_cost += cost
        if entry is not None and pos.entry_sig is None:
            pos.entry_sig, pos.entry_slot, pos.entry_time, pos.entry_price = entry[0], slot, time, entry[1]
            return True
        return False

    def dispose(self, wallet: str, mint: str, amount: Decimal) -> Decimal:
        """Consume `amount` FIFO; returns how much was actually held and consumed."""
        mints = self._wallets.get(wallet)
        if mints is None:
            return ZERO
        pos = mints.get(mint)
        if pos is None or amount <= ZERO:
            return ZERO
        left = amount
        lots, head = pos.lots, pos.head
        n = len(lots)
        by_key = pos.by_key
        while left > ZERO and head < n:
            lot = lots[head]
            key, lot_amount, cost = lot[0], lot[1], lot[2]
            if lot_amount <= left:
                left -= lot_amount
                pos.amount -= lot_amount
                if cost is not None:
                    pos.basis_amount -= lot_amount
                    pos.basis_cost -= cost
                head += 1
                del by_key[key]
            else:
                if cost is not None:
                    part = cost * left / lot_amount
                    cost -= part
                    pos.basis_amount -= left
                    pos.basis_cost -= part
                lots[head] = (key, lot_amount - left, cost, lot[3], lot[4])
                pos.amount -= left
                left = ZERO
        if head == n:
            del mints[mint]  # empty: the holding episode (and its entry) ends
            if not mints:
                del self._wallets[wallet]
            return amount - left
        if head > 16 and head * 2 > n:
            del lots[:head]
            pos.base += head
            head = 0
        pos.head = head
        return amount - left

    def remaining(self, wallet: str, mint: str, key: str) -> Decimal:
        """How much of the lot `key` is still held (0 once sold)."""
        mints = self._wallets.get(wallet)
        pos = None if mints is None else mints.get(mint)
        if pos is None:
            return ZERO
        i = pos.by_key.get(key)
        return ZERO if i is None else pos.lots[i - pos.base][1]

    def balance(self, wallet: str, mint: str) -> Decimal:
        mints = self._wallets.get(wallet)
        pos = None if mints is None else mints.get(mint)
        return ZERO if pos is None else pos.amount

    def basis(self, wallet: str, mint: str) -> tuple[Decimal, Decimal]:
        """(amount held in lots with a cost basis, their USD cost basis)."""
        mints = self._wallets.get(wallet)
        pos = None if mints is None else mints.get(mint)
        return (ZERO, ZERO) if pos is None else (pos.basis_amount, pos.basis_cost)

    def basis_cost(self, wallet: str, mint: str) -> Decimal:
        """The USD cost basis held (`basis(...)[1]`)."""
        mints = self._wallets.get(wallet)
        pos = None if mints is None else mints.get(mint)
        return ZERO if pos is None else pos.basis_cost

    def entry(self, wallet: str, mint: str) -> Entry | None:
        mints = self._wallets.get(wallet)
        pos = None if mints is None else mints.get(mint)
        return None if pos is None else pos.entry

    def wallets(self) -> int:
        return len(self._wallets)

    def to_dict(self) -> dict[str, Any]:
        return {w: {m: p.to_dict() for m, p in mints.items()} for w, mints in self._wallets.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Positions:
        out = cls()
        out._wallets = {w: {m: Position.from_dict(p) for m, p in mints.items()} for w, mints in d.items()}
        return out

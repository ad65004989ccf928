"""Closed, frozen types for everything that crosses a module boundary.

Amounts are `Decimal` in UI units (raw integer amount scaled by the mint's decimals),
lamports are `int`. Nothing here is ever a float.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

__all__ = [
    "Side",
    "MomentKind",
    "MomentStatus",
    "TradeEvent",
    "ParsedTransaction",
    "Tick",
    "Moment",
    "moment_id",
]


class Side(StrEnum):
    """What the wallet did to `TradeEvent.mint`.

    BUY: paid `quote_amount` of a quote mint for `amount` of `mint`.
    SELL: gave `amount` of `mint` for `quote_amount` of a quote mint.
    SWAP: token→token, neither side a quote mint: gave `quote_amount` of `quote_mint`
    and received `amount` of `mint`; the engine prices both legs through the oracle
    (a SELL of `quote_mint` and a BUY of `mint`).
    """

    BUY = "BUY"
    SELL = "SELL"
    SWAP = "SWAP"


class MomentKind(StrEnum):
    S2E = "S2E"
    BHD = "BHD"
    BAD_ROUTE = "BAD_ROUTE"
    IDLE_YIELD = "IDLE_YIELD"
    RUG = "RUG"


class MomentStatus(StrEnum):
    OPEN = "open"
    FINAL = "final"


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One swap leg a wallet performed, as seen from its balance changes."""

    signature: str
    slot: int
    block_time: int | None
    ix: int
    wallet: str
    side: Side
    mint: str
    amount: Decimal
    quote_mint: str
    quote_amount: Decimal
    price_usd: Decimal | None
    program: str | None
    fee_lamports: int

    @property
    def price_in_quote(self) -> Decimal:
        """Execution price of `mint` in units of `quote_mint`."""
        return self.quote_amount / self.amount


@dataclass(frozen=True, slots=True)
class ParsedTransaction:
    """What the parser reads out of one `getTransaction` result for one wallet."""

    signature: str
    slot: int
    block_time: int | None
    wallet: str
    signers: tuple[str, ...]
    failed: bool
    fee_lamports: int
    program: str | None
    flows: dict[str, Decimal] = field(default_factory=dict)
    trades: tuple[TradeEvent, ...] = ()


class Tick(NamedTuple):
    """A priced swap of `mint` by any wallet: the oracle's unit of information.

    A NamedTuple, not a frozen dataclass: the oracle makes one per priced trade, and a
    tuple is built in one step (`tuple.__new__`) where a frozen dataclass sets each field
    through `object.__setattr__`."""

    mint: str
    price_usd: Decimal
    amount: Decimal
    slot: int
    block_time: int
    wallet: str
    signature: str


@dataclass(frozen=True, slots=True)
class Moment:
    """A detected trading mistake. `id` is deterministic so replays upsert, not duplicate."""

    id: str
    kind: MomentKind
    wallet: str
    mint: str
    severity: Decimal
    pct: Decimal
    usd_value: Decimal
    window_start: int
    window_end: int
    sig_ref: str
    slot_ref: int
    status: MomentStatus
    detected_at: int
    updated_at: int
    explain: dict[str, Any] = field(default_factory=dict)


def moment_id(kind: MomentKind, wallet: str, mint: str, sig_ref: str) -> str:
    """Stable id from what identifies a moment; the same inputs give the same id in any process."""
    digest = hashlib.blake2b(
        f"{kind.value}|{wallet}|{mint}|{sig_ref}".encode(), digest_size=16
    ).hexdigest()
    return f"{kind.value.lower()}_{digest}"

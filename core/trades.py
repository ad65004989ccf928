"""`TradeRec`: the engine's compiled copy of a `TradeEvent`, each field read once.

`TradeEvent` is a pure-Python frozen dataclass (Ray pickles it; the parser, actors and API
use it). Compiled code reads a Python object's attributes through the generic attribute
protocol, which costs more than the interpreter's specialised reads, while a native
class's fields are plain struct reads. The engine reads every field of a trade several
times (pricing, positions, detectors), so it copies them once into a `TradeRec` and works
on that; `event` keeps the original for whatever must hand it on.
"""

from __future__ import annotations

from decimal import Decimal

from core.models import Side, TradeEvent

__all__ = ["TradeRec"]


class TradeRec:
    __slots__ = ("event", "signature", "slot", "block_time", "ix", "wallet", "side", "mint", "amount", "quote_mint",
                 "quote_amount", "price_usd")

    def __init__(self, event: TradeEvent) -> None:
        self.event = event
        self.signature: str = event.signature
        self.slot: int = event.slot
        self.block_time: int | None = event.block_time
        self.ix: int = event.ix
        self.wallet: str = event.wallet
        self.side: Side = event.side
        self.mint: str = event.mint
        self.amount: Decimal = event.amount
        self.quote_mint: str = event.quote_mint
        self.quote_amount: Decimal = event.quote_amount
        self.price_usd: Decimal | None = event.price_usd

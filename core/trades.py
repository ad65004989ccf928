"""`TradeRec`: the engine's compiled copy of a `TradeEvent`, each field read once; `Run`, a view's.

`TradeEvent` is a pure-Python frozen dataclass (Ray pickles it; the parser, actors and API
use it). Compiled code reads a Python object's attributes through the generic attribute
protocol, which costs more than the interpreter's specialised reads, while a native
class's fields are plain struct reads. The engine reads every field of a trade several
times (pricing, positions, detectors), so it copies them once into a `TradeRec` and works
on that; `event` keeps the original for whatever must hand it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from core.models import Side, TradeEvent

if TYPE_CHECKING:
    from core.state import WalletTx

__all__ = ["TradeRec", "Run", "run_of", "EventView"]

_NO_FLOWS: Final[Mapping[str, Any]] = MappingProxyType({})


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


class Run:
    """What the engine reads of one view (a transaction of one wallet) in a slot run, as native fields."""

    def __init__(self, wallet: str, signature: str, slot: int, block_time: int | None, failed: bool,
                 flows: Mapping[str, Decimal], recs: list[TradeRec]) -> None:
        self.wallet = wallet
        self.signature = signature
        self.slot = slot
        self.block_time = block_time
        self.failed = failed
        self.flows = flows
        self.recs = recs


def run_of(view: WalletTx) -> Run:
    failed = view.failed
    return Run(view.wallet, view.signature, view.slot, view.block_time, failed, view.flows,
               [] if failed else [TradeRec(t) for t in view.trades])


class EventView(Run):
    """A bare TradeEvent read as a one-trade transaction (no signers, not failed, no flows)."""

    def __init__(self, event: TradeEvent) -> None:
        rec = TradeRec(event)
        super().__init__(rec.wallet, rec.signature, rec.slot, rec.block_time, False, _NO_FLOWS, [rec])
        self.ix = rec.ix
        self.trades: tuple[TradeEvent, ...] = (event,)
        self.signers: tuple[str, ...] = ()

    # read only by snapshots and the wire format: not copied per event
    @property
    def fee_lamports(self) -> int:
        return self.trades[0].fee_lamports

    @property
    def program(self) -> str | None:
        return self.trades[0].program

"""Compact pickling of the domain types that cross actors by the thousand per batch.

A frozen slots dataclass pickles through Python-level `__getstate__`, an enum by a call,
each Decimal by its own reduce: ~20 µs per `TradeEvent`. Registered here (`copyreg`, which
Ray's pickler honours), a trade, view or tick travels as one flat tuple of str/int —
Decimals as their exact `str`, rebuilt with `Decimal(str)` — several times cheaper both
ways and bit-for-bit the same values. The engine's view of a bare TradeEvent arrives as
the `ParsedTransaction` it stands for (same attributes, as `ShardState.apply` reads them).
Importing `actors.protocol` registers them (every actor and worker module does).
"""

from __future__ import annotations

import copyreg
from decimal import Decimal
from typing import Any

from core.engine import _EventView  # the engine's view of a bare TradeEvent (benchmarks, tests)
from core.models import ParsedTransaction, Side, Tick, TradeEvent

__all__ = ["register"]

_SIDES = {s.value: s for s in Side}


def _trade_args(t: TradeEvent) -> tuple[Any, ...]:
    price = t.price_usd
    return (t.signature, t.slot, t.block_time, t.ix, t.wallet, t.side.value, t.mint, str(t.amount), t.quote_mint,
            str(t.quote_amount), None if price is None else str(price), t.program, t.fee_lamports)


def _trade(sig: str, slot: int, bt: int | None, ix: int, wallet: str, side: str, mint: str, amount: str,
           quote: str, quote_amount: str, price: str | None, program: str | None, fee: int) -> TradeEvent:
    return TradeEvent(sig, slot, bt, ix, wallet, _SIDES[side], mint, Decimal(amount), quote, Decimal(quote_amount),
                      None if price is None else Decimal(price), program, fee)


def _reduce_trade(t: TradeEvent) -> tuple[Any, ...]:
    return _trade, _trade_args(t)


def _reduce_view(v: Any) -> tuple[Any, ...]:
    flows = tuple((m, str(x)) for m, x in v.flows.items())
    return _view, (v.signature, v.slot, v.block_time, v.wallet, tuple(v.signers), v.failed, v.fee_lamports,
                   v.program, flows, tuple(_trade_args(t) for t in v.trades))


def _view(sig: str, slot: int, bt: int | None, wallet: str, signers: tuple[str, ...], failed: bool, fee: int,
          program: str | None, flows: tuple[tuple[str, str], ...], trades: tuple[tuple[Any, ...], ...]) -> Any:
    return ParsedTransaction(sig, slot, bt, wallet, signers, failed, fee, program,
                             {m: Decimal(x) for m, x in flows}, tuple(_trade(*t) for t in trades))


def _reduce_tick(t: Tick) -> tuple[Any, ...]:
    return _tick, (t.mint, str(t.price_usd), str(t.amount), t.slot, t.block_time, t.wallet, t.signature)


def _tick(mint: str, price: str, amount: str, slot: int, bt: int, wallet: str, sig: str) -> Tick:
    return Tick(mint, Decimal(price), Decimal(amount), slot, bt, wallet, sig)


def register() -> None:
    copyreg.pickle(TradeEvent, _reduce_trade)
    copyreg.pickle(ParsedTransaction, _reduce_view)
    copyreg.pickle(Tick, _reduce_tick)
    copyreg.pickle(_EventView, _reduce_view)

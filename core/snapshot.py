"""Deterministic, versioned serialisation of engine state: plain dicts, Decimals as strings.

Checkpoints are orjson of plain JSON values (never pickle): the same state always gives
the same bytes, a checkpoint can be inspected with `jq`, and a reader refuses a version
it does not know instead of guessing. `str(Decimal)` round-trips exactly. (How moments
and trades look on the wire is `core.codec`'s business; this is internal state.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from core.models import ParsedTransaction, Side, Tick, TradeEvent

__all__ = [
    "SNAPSHOT_VERSION",
    "dumps",
    "loads",
    "dec",
    "opt_dec",
    "encode_trade",
    "decode_trade",
    "encode_parsed",
    "decode_parsed",
    "encode_tick",
    "decode_tick",
]

SNAPSHOT_VERSION = 1


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(kind: str, body: dict[str, Any]) -> bytes:
    """`{"format": kind, "v": SNAPSHOT_VERSION, "body": body}` as compact JSON bytes."""
    return orjson.dumps({"format": kind, "v": SNAPSHOT_VERSION, "body": body}, default=_default)


def loads(kind: str, data: bytes) -> dict[str, Any]:
    """The body of a snapshot written by `dumps(kind, …)`; ValueError for anything else."""
    doc = orjson.loads(data)
    if not isinstance(doc, dict) or doc.get("format") != kind:
        raise ValueError(f"not a {kind} snapshot")
    if doc.get("v") != SNAPSHOT_VERSION:
        raise ValueError(f"{kind} snapshot version {doc.get('v')!r} is not {SNAPSHOT_VERSION}")
    return doc["body"]


def dec(value: Any) -> Decimal:
    return Decimal(value)


def opt_dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def encode_trade(t: TradeEvent) -> list[Any]:
    return [
        t.signature, t.slot, t.block_time, t.ix, t.wallet, t.side.value, t.mint, str(t.amount),
        t.quote_mint, str(t.quote_amount), _s(t.price_usd), t.program, t.fee_lamports,
    ]


def decode_trade(d: list[Any]) -> TradeEvent:
    return TradeEvent(
        signature=d[0], slot=d[1], block_time=d[2], ix=d[3], wallet=d[4], side=Side(d[5]), mint=d[6],
        amount=Decimal(d[7]), quote_mint=d[8], quote_amount=Decimal(d[9]), price_usd=opt_dec(d[10]),
        program=d[11], fee_lamports=d[12],
    )


def encode_parsed(p: Any) -> dict[str, Any]:
    """A `ParsedTransaction` (or any view with its fields, e.g. the engine's view of a bare TradeEvent)."""
    return {
        "signature": p.signature, "slot": p.slot, "block_time": p.block_time, "wallet": p.wallet,
        "signers": list(p.signers), "failed": p.failed, "fee_lamports": p.fee_lamports, "program": p.program,
        "flows": [[m, str(v)] for m, v in p.flows.items()], "trades": [encode_trade(t) for t in p.trades],
    }


def decode_parsed(d: dict[str, Any]) -> ParsedTransaction:
    return ParsedTransaction(
        signature=d["signature"], slot=d["slot"], block_time=d["block_time"], wallet=d["wallet"],
        signers=tuple(d["signers"]), failed=d["failed"], fee_lamports=d["fee_lamports"], program=d["program"],
        flows={m: Decimal(v) for m, v in d["flows"]}, trades=tuple(decode_trade(t) for t in d["trades"]),
    )


def encode_tick(t: Tick) -> list[Any]:
    return [t.mint, str(t.price_usd), str(t.amount), t.slot, t.block_time, t.wallet, t.signature]


def decode_tick(d: list[Any]) -> Tick:
    return Tick(d[0], Decimal(d[1]), Decimal(d[2]), d[3], d[4], d[5], d[6])

"""Plain-JSON shapes of the domain types: Decimals as strings, enums as their values.

One place decides how a TradeEvent or Moment looks on the wire (CLI output, JSONB,
API bodies), so every consumer agrees to the digit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.models import Moment, ParsedTransaction, TradeEvent

__all__ = ["decimal_text", "trade_to_dict", "moment_to_dict", "parsed_to_dict", "jsonable"]


def decimal_text(value: Decimal) -> str:
    """Exact, no exponent: Decimal('1E-9') -> '0.000000001'."""
    return format(value, "f")


def jsonable(value: Any) -> Any:
    """Recursively turn Decimals into strings (for explain dicts and the like)."""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def trade_to_dict(trade: TradeEvent) -> dict[str, Any]:
    return {
        "signature": trade.signature,
        "slot": trade.slot,
        "block_time": trade.block_time,
        "ix": trade.ix,
        "wallet": trade.wallet,
        "side": trade.side.value,
        "mint": trade.mint,
        "amount": decimal_text(trade.amount),
        "quote_mint": trade.quote_mint,
        "quote_amount": decimal_text(trade.quote_amount),
        "price_usd": None if trade.price_usd is None else decimal_text(trade.price_usd),
        "program": trade.program,
        "fee_lamports": trade.fee_lamports,
    }


def parsed_to_dict(parsed: ParsedTransaction) -> dict[str, Any]:
    return {
        "signature": parsed.signature,
        "wallet": parsed.wallet,
        "slot": parsed.slot,
        "block_time": parsed.block_time,
        "failed": parsed.failed,
        "program": parsed.program,
        "flows": {mint: decimal_text(v) for mint, v in parsed.flows.items()},
        "trades": [trade_to_dict(t) for t in parsed.trades],
    }


def moment_to_dict(moment: Moment) -> dict[str, Any]:
    return {
        "id": moment.id,
        "kind": moment.kind.value,
        "wallet": moment.wallet,
        "mint": moment.mint,
        "severity": decimal_text(moment.severity),
        "pct": decimal_text(moment.pct),
        "usd_value": decimal_text(moment.usd_value),
        "window_start": moment.window_start,
        "window_end": moment.window_end,
        "sig_ref": moment.sig_ref,
        "slot_ref": moment.slot_ref,
        "status": moment.status.value,
        "detected_at": moment.detected_at,
        "updated_at": moment.updated_at,
        "explain": jsonable(moment.explain),
    }

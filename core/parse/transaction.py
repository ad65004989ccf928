"""`parse_transaction`: one `getTransaction` result → one wallet's flows and trades.

Pure: a dict in, a frozen `ParsedTransaction` out. Input we cannot read raises
`ParseError` with a message naming the missing or malformed part; a failed transaction
parses fine and simply has no trades.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.errors import ParseError
from core.models import ParsedTransaction
from core.parse.accounts import AccountKeys, read_account_keys
from core.parse.flows import read_token_accounts, wallet_flows
from core.parse.tips import tip_lamports
from core.parse.trades import TradeContext, trades_from_flows
from core.parse.venues import venue_of

__all__ = ["parse_transaction", "unwrap_result", "invoked_programs"]

_INVOKE = re.compile(r"^Program (\w+) invoke \[\d+\]")


def unwrap_result(row: Any) -> Mapping[str, Any]:
    """Accept a bare result, a JSON-RPC response `{"result": …}`, or a fixture row."""
    if not isinstance(row, Mapping):
        raise ParseError(f"expected a JSON object, got {type(row).__name__}")
    if "result" in row and "transaction" not in row:
        row = row["result"]
        if row is None:
            raise ParseError("result is null (transaction not found)")
        if not isinstance(row, Mapping):
            raise ParseError("result is not a JSON object")
    return row


def parse_transaction(raw: Mapping[str, Any], wallet: str | None = None) -> ParsedTransaction:
    """Flows and trades of `wallet` (default: the fee payer) in one transaction."""
    result = unwrap_result(raw)
    tx = result.get("transaction")
    meta = result.get("meta")
    if tx is None:
        raise ParseError("transaction is missing")
    if not isinstance(meta, Mapping):
        raise ParseError("meta is missing (the RPC node did not return status and balances)")
    slot = result.get("slot")
    if not isinstance(slot, int) or isinstance(slot, bool):
        raise ParseError("slot is missing or not an integer")
    block_time = result.get("blockTime")
    if block_time is not None and not isinstance(block_time, int):
        raise ParseError("blockTime is not an integer")

    keys = read_account_keys(tx, meta)
    signature = _signature(tx)
    owner = wallet or keys.keys[0]
    failed = meta.get("err") is not None
    fee = int(meta.get("fee") or 0)
    fee_paid = fee if owner == keys.keys[0] else 0
    program = venue_of(invoked_programs(meta, keys))
    token_accounts = read_token_accounts(meta)
    flows = wallet_flows(owner, keys, meta, token_accounts)

    trades = ()
    if not failed:
        ctx = TradeContext(signature, slot, block_time, owner, program, fee_paid)
        token_keys = {keys.keys[i] for i in token_accounts if i < len(keys.keys)}
        trades = trades_from_flows(flows, ctx, tip_lamports(tx, meta, keys, owner, token_keys))
    return ParsedTransaction(
        signature=signature,
        slot=slot,
        block_time=block_time,
        wallet=owner,
        signers=keys.signers,
        failed=failed,
        fee_lamports=fee_paid,
        program=program,
        flows=flows.as_ui(),
        trades=trades,
    )


def invoked_programs(meta: Mapping[str, Any], keys: AccountKeys) -> list[str]:
    """Program ids in invocation order: from the logs when present, else the instructions."""
    logs = meta.get("logMessages") or ()
    programs = [m.group(1) for line in logs if (m := _INVOKE.match(line))]
    if programs:
        return programs
    programs = list(keys.top_level_programs)
    for inner in meta.get("innerInstructions") or ():
        for ix in inner.get("instructions") or ():
            if "programId" in ix:
                programs.append(ix["programId"])
            elif isinstance(ix.get("programIdIndex"), int) and ix["programIdIndex"] < len(keys.keys):
                programs.append(keys.keys[ix["programIdIndex"]])
    return programs


def _signature(tx: Any) -> str:
    if isinstance(tx, list):  # base64: the first signature is in the bytes
        import base64

        from solders.transaction import VersionedTransaction

        return str(VersionedTransaction.from_bytes(base64.b64decode(tx[0])).signatures[0])
    signatures = tx.get("signatures")
    if not isinstance(signatures, list) or not signatures or not isinstance(signatures[0], str):
        raise ParseError("transaction.signatures is missing")
    return signatures[0]

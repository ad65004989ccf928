"""Tips and bot fees: top-level SOL transfers that pay someone beside the swap.

Trading bots add a System `transfer` from the trader to a tip or fee account next to
the DEX instruction. Those lamports are in the wallet's SOL flow (what it really spent)
but are not part of the price it got from the pool, so trades are priced without them
(the "pool price"; flows stay all-in). A transfer into a token account (wrapping SOL
into WSOL for the swap itself) is part of the trade, not a tip.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import base58

from core.parse.accounts import AccountKeys

__all__ = ["SYSTEM_PROGRAM", "tip_lamports"]

SYSTEM_PROGRAM = "11111111111111111111111111111111"
_TRANSFER = 2  # SystemInstruction::Transfer discriminant (u32 little-endian)


def tip_lamports(
    tx: Any, meta: Mapping[str, Any], keys: AccountKeys, wallet: str, token_accounts: Collection[str]
) -> int:
    if not isinstance(tx, Mapping):
        return 0  # binary encodings: no instruction-level view, price all-in
    pre, post = meta.get("preBalances") or (), meta.get("postBalances") or ()
    total = 0
    for ix in tx["message"].get("instructions") or ():
        transfer = _system_transfer(ix, keys)
        if transfer is None:
            continue
        source, destination, lamports = transfer
        if source != wallet or destination == wallet or destination in token_accounts:
            continue
        # A tip stays where it was sent; a temporary WSOL account created and closed
        # inside the swap ends where it started, so it is not a tip.
        index = keys.index(destination)
        if index is not None and index < len(post) and post[index] - pre[index] >= lamports:
            total += lamports
    return total


def _system_transfer(ix: Mapping[str, Any], keys: AccountKeys) -> tuple[str, str, int] | None:
    parsed = ix.get("parsed")
    if isinstance(parsed, Mapping):  # jsonParsed
        if ix.get("programId") != SYSTEM_PROGRAM or parsed.get("type") != "transfer":
            return None
        info = parsed.get("info") or {}
        return info.get("source"), info.get("destination"), int(info.get("lamports") or 0)
    index = ix.get("programIdIndex")
    if not isinstance(index, int) or index >= len(keys.keys) or keys.keys[index] != SYSTEM_PROGRAM:
        return None
    accounts = ix.get("accounts") or ()
    try:
        data = base58.b58decode(ix.get("data") or "")
    except ValueError:
        return None
    if len(data) != 12 or int.from_bytes(data[:4], "little") != _TRANSFER or len(accounts) < 2:
        return None
    return keys.keys[accounts[0]], keys.keys[accounts[1]], int.from_bytes(data[4:], "little")

"""Account keys of a `getTransaction` result, whatever its encoding.

Balance arrays index the full key list: static keys, then lookup-table writable, then
lookup-table readonly. `json` lists the lookup-table keys in `meta.loadedAddresses`;
`jsonParsed` (as web3.js stores it) puts them in `accountKeys` with `source: lookupTable`;
`base64` needs the message decoded (solders) plus `meta.loadedAddresses`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from core.errors import ParseError

__all__ = ["AccountKeys", "read_account_keys", "mentioned_addresses", "owned_token_accounts"]


@dataclass(frozen=True, slots=True)
class AccountKeys:
    keys: tuple[str, ...]
    signers: tuple[str, ...]
    # Program ids of the top-level instructions, in order (for venue detection without logs).
    top_level_programs: tuple[str, ...]

    def index(self, key: str) -> int | None:
        try:
            return self.keys.index(key)
        except ValueError:
            return None


def read_account_keys(tx: Mapping[str, Any], meta: Mapping[str, Any]) -> AccountKeys:
    if isinstance(tx, list):
        return _from_binary(tx, meta)
    message = tx.get("message")
    if not isinstance(message, Mapping):
        raise ParseError("transaction.message is missing")
    raw_keys = message.get("accountKeys")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise ParseError("transaction.message.accountKeys is missing or empty")
    if isinstance(raw_keys[0], Mapping):
        keys = [_pubkey(k) for k in raw_keys]
        signers = tuple(k["pubkey"] for k in raw_keys if k.get("signer"))
    else:
        keys = [_text(k, "accountKeys[]") for k in raw_keys]
        header = message.get("header") or {}
        n_signers = header.get("numRequiredSignatures", 1)
        signers = tuple(keys[: int(n_signers)])
    keys = _with_loaded(keys, meta)
    programs = []
    for ix in message.get("instructions") or []:
        if "programId" in ix:
            programs.append(ix["programId"])
        elif "programIdIndex" in ix and ix["programIdIndex"] < len(keys):
            programs.append(keys[ix["programIdIndex"]])
    return AccountKeys(tuple(keys), signers, tuple(programs))


def _with_loaded(keys: list[str], meta: Mapping[str, Any]) -> list[str]:
    # jsonParsed already lists lookup-table keys; only append when the balances need more keys.
    loaded = meta.get("loadedAddresses") or {}
    extra = list(loaded.get("writable") or []) + list(loaded.get("readonly") or [])
    n_balances = len(meta.get("preBalances") or ())
    if extra and len(keys) < n_balances:
        keys = keys + extra
    if n_balances and len(keys) != n_balances:
        raise ParseError(
            f"account key count {len(keys)} does not match balance count {n_balances}"
            " (lookup-table addresses missing?)"
        )
    return keys


def _from_binary(tx: Sequence[Any], meta: Mapping[str, Any]) -> AccountKeys:
    if len(tx) != 2 or tx[1] != "base64":
        raise ParseError(f"unsupported transaction encoding {tx[1:]!r}; use json, jsonParsed or base64")
    from solders.transaction import VersionedTransaction  # only binary input needs it

    try:
        vtx = VersionedTransaction.from_bytes(base64.b64decode(tx[0]))
    except Exception as exc:  # solders raises its own error types
        raise ParseError(f"transaction bytes do not decode: {exc}") from None
    message = vtx.message
    keys = [str(k) for k in message.account_keys]
    signers = tuple(keys[: message.header.num_required_signatures])
    programs = [keys[ix.program_id_index] for ix in message.instructions]
    return AccountKeys(tuple(_with_loaded(keys, meta)), signers, tuple(programs))


def _pubkey(entry: Mapping[str, Any]) -> str:
    return _text(entry.get("pubkey"), "accountKeys[].pubkey")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParseError(f"{where} is not a base58 string")
    return value


def mentioned_addresses(raw: Mapping[str, Any]) -> set[str]:
    """Addresses a raw transaction touches: account keys and token-balance owners."""
    result = raw.get("result", raw) if "transaction" not in raw else raw
    if not isinstance(result, Mapping):
        return set()
    out: set[str] = set()
    meta = result.get("meta") or {}
    tx = result.get("transaction")
    if isinstance(tx, Mapping):
        for key in (tx.get("message") or {}).get("accountKeys") or ():
            out.add(key if isinstance(key, str) else key.get("pubkey"))
    loaded = meta.get("loadedAddresses") or {}
    out.update(loaded.get("writable") or ())
    out.update(loaded.get("readonly") or ())
    for field_name in ("preTokenBalances", "postTokenBalances"):
        for balance in meta.get(field_name) or ():
            if balance.get("owner"):
                out.add(balance["owner"])
    out.discard(None)  # type: ignore[arg-type]
    return out


def owned_token_accounts(result: Mapping[str, Any], owners: AbstractSet[str]) -> dict[str, tuple[str, str]]:
    """Token accounts of `owners` that exist after this transaction: account -> (owner, mint).

    Why: a transfer into an existing token account names only that account, never its owner,
    so a source watching the owner's address must watch its token accounts too. Read from
    `postTokenBalances` (an account closed by the transaction is gone); () when unreadable.
    """
    meta = result.get("meta")
    balances = meta.get("postTokenBalances") if isinstance(meta, Mapping) else None
    if not balances or not owners:
        return {}
    mine = [b for b in balances if isinstance(b, Mapping) and b.get("owner") in owners]
    if not mine:
        return {}
    try:
        keys = read_account_keys(result.get("transaction"), meta).keys  # type: ignore[arg-type]
    except (ParseError, KeyError, TypeError, ValueError, AttributeError):
        return {}
    out: dict[str, tuple[str, str]] = {}
    for balance in mine:
        index, mint = balance.get("accountIndex"), balance.get("mint")
        if isinstance(index, int) and 0 <= index < len(keys) and isinstance(mint, str):
            out[keys[index]] = (balance["owner"], mint)
    return out

"""JSON-RPC methods of the local node, as pure functions over a `Ledger`.

HTTP: getTransaction, getSignaturesForAddress, getBlockTime, getSlot, getHealth,
getTokenAccountsByOwner (jsonParsed, from the latest token balances the ledger holds).
Websocket subscriptions: transactionSubscribe (Helius), logsSubscribe, slotSubscribe, each
parsed into a `Subscription` that knows which stored transactions it wants and how its
notification looks. Error codes and messages follow the Solana validator's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.localnode.ledger import Ledger, StoredTx

__all__ = ["RpcFault", "call_http", "Subscription", "parse_subscription", "error_reply", "NOTIFICATION_METHOD"]

NOTIFICATION_METHOD = {"transaction": "transactionNotification", "logs": "logsNotification", "slot": "slotNotification"}
_COMMITMENTS = {None, "confirmed", "finalized"}


class RpcFault(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def error_reply(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}


def call_http(ledger: Ledger, method: str, params: list[Any]) -> Any:
    """The result of one HTTP method call; RpcFault for a JSON-RPC error."""
    if method == "getTransaction":
        return _get_transaction(ledger, params)
    if method == "getSignaturesForAddress":
        address, config = _address_and_config(params)
        limit = config.get("limit", 1000)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise RpcFault(-32602, "Invalid limit; max 1000")
        found = ledger.signatures_for(address, before=config.get("before"), until=config.get("until"), limit=limit)
        return [tx.signature_entry() for tx in found]
    if method == "getBlockTime":
        if not params or not isinstance(params[0], int):
            raise RpcFault(-32602, "Invalid params: expected a slot")
        try:
            return ledger.block_time(params[0])
        except KeyError:
            raise RpcFault(-32004, f"Block not available for slot {params[0]}") from None
    if method == "getSlot":
        return ledger.head
    if method == "getTokenAccountsByOwner":
        return _token_accounts_by_owner(ledger, params)
    if method == "getHealth":
        return "ok"
    raise RpcFault(-32601, "Method not found")


def _token_accounts_by_owner(ledger: Ledger, params: list[Any]) -> Any:
    owner, program = params[0] if params else None, params[1] if len(params) > 1 else None
    if not isinstance(owner, str) or not isinstance(program, Mapping) or not isinstance(program.get("programId"), str):
        raise RpcFault(-32602, "Invalid params: expected an owner and {programId}")
    value = [
        {"pubkey": account, "account": {
            "data": {"program": "spl-token", "space": 165, "parsed": {"type": "account", "info": {
                "mint": mint, "owner": owner, "state": "initialized", "tokenAmount": {"amount": amount}}}},
            "executable": False, "lamports": 2_039_280, "owner": program["programId"], "rentEpoch": 0, "space": 165}}
        for account, mint, amount in ledger.token_accounts_of(owner, program["programId"])
    ]
    return {"context": {"slot": ledger.head}, "value": value}


def _get_transaction(ledger: Ledger, params: list[Any]) -> Any:
    if not params or not isinstance(params[0], str):
        raise RpcFault(-32602, "Invalid params: expected a signature")
    config = params[1] if len(params) > 1 and isinstance(params[1], Mapping) else {}
    if config.get("commitment") not in _COMMITMENTS:
        raise RpcFault(-32602, "Method does not support commitment below `confirmed`")
    tx = ledger.get(params[0])
    if tx is None:
        return None
    # Encoding is served as recorded (json or jsonParsed); the version check is the node's.
    limit = config.get("maxSupportedTransactionVersion")
    if tx.version is not None and (limit is None or tx.version > limit):
        raise RpcFault(
            -32015,
            f"Transaction version ({tx.version}) is not supported by the requesting client. Please try the"
            " request again with the following configuration parameter:"
            f' "maxSupportedTransactionVersion": {tx.version}',
        )
    return tx.result


def _address_and_config(params: list[Any]) -> tuple[str, Mapping[str, Any]]:
    if not params or not isinstance(params[0], str):
        raise RpcFault(-32602, "Invalid params: expected an address")
    config = params[1] if len(params) > 1 and isinstance(params[1], Mapping) else {}
    return params[0], config


@dataclass(slots=True)
class Subscription:
    """One live subscription: `kind` is transaction | logs | slot."""

    id: int
    kind: str
    include: frozenset[str] = field(default_factory=frozenset)  # empty: every transaction
    required: frozenset[str] = field(default_factory=frozenset)
    exclude: frozenset[str] = field(default_factory=frozenset)
    failed: bool = True
    details: str = "full"

    def wants(self, tx: StoredTx) -> bool:
        keys = set(tx.keys)
        if self.include and not keys & self.include:
            return False
        if not self.required <= keys or keys & self.exclude:
            return False
        return self.failed or tx.err is None

    def notification(self, tx: StoredTx) -> dict[str, Any]:
        if self.kind == "logs":
            value = {"signature": tx.signature, "err": tx.err, "logs": tx.logs}
            result: dict[str, Any] = {"context": {"slot": tx.slot}, "value": value}
        elif self.details == "signatures":
            result = {"signature": tx.signature, "slot": tx.slot, "transactionIndex": tx.seq}
        else:  # Helius puts the getTransaction body one level down and leaves out blockTime
            body = {
                "transaction": tx.result["transaction"],
                "meta": tx.result.get("meta"),
                "version": tx.result.get("version", "legacy"),
            }
            result = {"signature": tx.signature, "slot": tx.slot, "transactionIndex": tx.seq, "transaction": body}
        return _notify(self, result)

    def slot_notification(self, slot: int) -> dict[str, Any]:
        return _notify(self, {"parent": slot - 1, "root": max(0, slot - 32), "slot": slot})


def _notify(sub: Subscription, result: Mapping[str, Any]) -> dict[str, Any]:
    params = {"result": result, "subscription": sub.id}
    return {"jsonrpc": "2.0", "method": NOTIFICATION_METHOD[sub.kind], "params": params}


def parse_subscription(sub_id: int, method: str, params: Any) -> Subscription:
    """A subscribe request as a `Subscription`; RpcFault when the request is invalid."""
    params = params if isinstance(params, list) else []
    if method == "slotSubscribe":
        return Subscription(sub_id, "slot")
    if method == "logsSubscribe":
        filter_ = params[0] if params else None
        if filter_ in ("all", "allWithVotes"):
            return Subscription(sub_id, "logs")
        mentions = filter_.get("mentions") if isinstance(filter_, Mapping) else None
        if not isinstance(mentions, list) or len(mentions) != 1:
            raise RpcFault(-32602, "Invalid Request: Only 1 address supported")
        return Subscription(sub_id, "logs", include=frozenset(mentions))
    if method == "transactionSubscribe":
        filter_ = params[0] if params and isinstance(params[0], Mapping) else {}
        options = params[1] if len(params) > 1 and isinstance(params[1], Mapping) else {}
        lists = {name: filter_.get(name) or [] for name in ("accountInclude", "accountRequired", "accountExclude")}
        if any(not isinstance(v, list) or len(v) > 50_000 for v in lists.values()):
            raise RpcFault(-32602, "Invalid params: account lists must hold at most 50000 keys")
        return Subscription(
            sub_id,
            "transaction",
            include=frozenset(lists["accountInclude"]),
            required=frozenset(lists["accountRequired"]),
            exclude=frozenset(lists["accountExclude"]),
            failed=filter_.get("failed", True) is not False,
            details=options.get("transactionDetails", "full"),
        )
    raise RpcFault(-32601, "Method not found")

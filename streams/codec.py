"""Websocket frames → typed values: `decode_frame(frame) -> list[Decoded]`.

Never raises: a frame we cannot read becomes `Malformed(reason)`, a well-formed message we
do not handle becomes `Unknown(method)`. A frame may be a JSON array of messages, hence a
list. Helius `transactionNotification`s are reshaped like a `getTransaction` result
(`blockTime` None: Helius does not send it) so everything downstream reads one shape.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

from core.errors import ParseError
from core.parse.accounts import read_account_keys
from streams.base import RawTx

__all__ = [
    "Subscribed",
    "Unsubscribed",
    "RpcError",
    "SlotTick",
    "Malformed",
    "Unknown",
    "Decoded",
    "decode_frame",
    "tx_signature",
    "tx_account_keys",
]


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The server confirmed a subscribe request."""

    request_id: int | str | None
    subscription: int


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    request_id: int | str | None
    ok: bool


@dataclass(frozen=True, slots=True)
class RpcError:
    """A JSON-RPC error; `request_id` None means the server could not read our request."""

    request_id: int | str | None
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class SlotTick:
    slot: int
    parent: int | None
    root: int | None


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """Valid JSON-RPC we do not consume (another notification kind, an odd result)."""

    method: str | None


Decoded: TypeAlias = RawTx | Subscribed | Unsubscribed | RpcError | SlotTick | Malformed | Unknown


def decode_frame(frame: bytes | str, *, skip_failed: bool = False) -> list[Decoded]:
    """Every message in one frame; with `skip_failed`, failed transactions are left out."""
    try:
        payload = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        return [Malformed(f"invalid JSON: {exc}")]
    messages = payload if isinstance(payload, list) else [payload]
    if not messages:
        return [Malformed("empty batch")]
    out: list[Decoded] = []
    for message in messages:
        try:
            decoded = _decode_message(message, skip_failed)
        except ParseError as exc:
            decoded = Malformed(exc.detail)
        if decoded is not None:
            out.append(decoded)
    return out


def _decode_message(message: Any, skip_failed: bool) -> Decoded | None:
    if not isinstance(message, Mapping):
        raise ParseError(f"message is a {type(message).__name__}, not an object")
    method = message.get("method")
    if method is None:
        return _decode_response(message)
    if not isinstance(method, str):
        raise ParseError("method is not a string")
    params = message.get("params")
    if method == "transactionNotification":
        return _transaction(_result(params), skip_failed)
    if method == "logsNotification":
        return _logs(_result(params), skip_failed)
    if method == "slotNotification":
        result = _result(params)
        return SlotTick(_int(result.get("slot"), "slot"), _opt_int(result.get("parent")), _opt_int(result.get("root")))
    return Unknown(method)


def _decode_response(message: Mapping[str, Any]) -> Decoded:
    request_id = message.get("id")
    if "error" in message:
        error = message["error"]
        if not isinstance(error, Mapping):
            raise ParseError("error is not an object")
        return RpcError(request_id, _int(error.get("code"), "error.code"), str(error.get("message", "")))
    if "result" not in message:
        raise ParseError("neither method, result nor error")
    result = message["result"]
    if isinstance(result, bool):  # before int: bool is an int subclass
        return Unsubscribed(request_id, result)
    if isinstance(result, int):
        return Subscribed(request_id, result)
    return Unknown(None)


def _result(params: Any) -> Mapping[str, Any]:
    if not isinstance(params, Mapping) or not isinstance(params.get("result"), Mapping):
        raise ParseError("params.result is missing")
    return params["result"]


def _transaction(result: Mapping[str, Any], skip_failed: bool) -> RawTx | None:
    slot = _int(result.get("slot"), "slot")
    wrapped = result.get("transaction")
    if wrapped is None:  # transactionDetails "signatures": nothing to show yet, fetch it
        return RawTx(_str(result.get("signature"), "signature"), slot, None)
    if not isinstance(wrapped, Mapping) or "transaction" not in wrapped:
        raise ParseError("transaction.transaction is missing")
    meta = wrapped.get("meta")
    if not isinstance(meta, Mapping):
        raise ParseError("transaction.meta is missing")
    if skip_failed and meta.get("err") is not None:
        return None
    shaped = {
        "slot": slot,
        "blockTime": result.get("blockTime"),
        "transaction": wrapped["transaction"],
        "meta": meta,
        "version": wrapped.get("version", "legacy"),
    }
    signature = result.get("signature") or tx_signature(shaped)
    return RawTx(_str(signature, "signature"), slot, shaped)


def _logs(result: Mapping[str, Any], skip_failed: bool) -> RawTx | None:
    context, value = result.get("context"), result.get("value")
    if not isinstance(context, Mapping) or not isinstance(value, Mapping):
        raise ParseError("logsNotification needs context and value")
    if skip_failed and value.get("err") is not None:
        return None
    return RawTx(_str(value.get("signature"), "signature"), _int(context.get("slot"), "slot"), None)


def tx_signature(result: Mapping[str, Any]) -> str:
    """The first signature of a `getTransaction` result (json, jsonParsed or base64); ParseError if none."""
    tx = result.get("transaction")
    if isinstance(tx, Mapping):
        signatures = tx.get("signatures")
        if isinstance(signatures, list) and signatures and isinstance(signatures[0], str):
            return signatures[0]
        raise ParseError("transaction.signatures is missing")
    if isinstance(tx, list) and len(tx) == 2 and tx[1] == "base64":
        from solders.transaction import VersionedTransaction  # only binary input needs it

        try:
            return str(VersionedTransaction.from_bytes(base64.b64decode(tx[0])).signatures[0])
        except Exception as exc:  # solders raises its own types for bad bytes
            raise ParseError(f"undecodable base64 transaction: {exc}") from None
    raise ParseError("transaction is missing")


def tx_account_keys(result: Mapping[str, Any]) -> tuple[str, ...]:
    """Every account key of a result (static + lookup tables); () when unreadable."""
    tx, meta = result.get("transaction"), result.get("meta")
    try:
        return read_account_keys(tx, meta if isinstance(meta, Mapping) else {}).keys  # type: ignore[arg-type]
    except (ParseError, KeyError, TypeError, ValueError, AttributeError):
        return ()


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{name} is not an integer")
    return value


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParseError(f"{name} is missing")
    return value

"""decode_frame on the real frames in tests/fixtures/mainnet/ws_examples.json, and on bad ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.parse import parse_transaction
from streams.base import RawTx
from streams.codec import (
    Malformed,
    RpcError,
    SlotTick,
    Subscribed,
    Unknown,
    Unsubscribed,
    decode_frame,
    tx_account_keys,
    tx_signature,
)
from tests.fixtures import MAINNET, mainnet_transactions

EXAMPLES: dict[str, Any] = json.loads((MAINNET / "ws_examples.json").read_text())
TX_FRAMES = EXAMPLES["transactionNotification"]
LOGS_FRAMES = EXAMPLES["logsNotification"]
SLOT = {"parent": 75, "root": 44, "slot": 76}


@pytest.mark.parametrize("example", TX_FRAMES, ids=lambda e: e["signature"][:8])
def test_helius_transaction_becomes_a_get_transaction_result(example: dict[str, Any]) -> None:
    # Arrange
    frame = json.dumps(example["message"])

    # Act
    [item] = decode_frame(frame)

    # Assert
    assert isinstance(item, RawTx)
    assert (item.signature, item.slot) == (example["signature"], example["slot"])
    assert item.result is not None
    assert set(item.result) == {"slot", "blockTime", "transaction", "meta", "version"}
    assert item.result["blockTime"] is None and item.result["slot"] == example["slot"]
    assert parse_transaction(item.result).signature == example["signature"]


def test_helius_reshaping_matches_the_recorded_conversion() -> None:
    # ws_transactions.jsonl holds one of these frames converted by hand to a getTransaction result.
    recorded = {
        sig: row for sig, row in mainnet_transactions().items() if "transactionNotification" in row.get("note", "")
    }
    assert recorded, "fixture row converted from a transactionNotification"
    compared = 0
    for example in TX_FRAMES:
        if example["signature"] in recorded:
            [item] = decode_frame(json.dumps(example["message"]).encode())
            assert isinstance(item, RawTx) and item.result == recorded[example["signature"]]["result"]
            compared += 1
    assert compared == len(recorded)


@pytest.mark.parametrize("example", LOGS_FRAMES, ids=lambda e: str(e["message"]["params"]["subscription"]))
def test_logs_notification_is_signature_only(example: dict[str, Any]) -> None:
    value = example["message"]["params"]["result"]["value"]

    [item] = decode_frame(json.dumps(example["message"]))

    assert item == RawTx(value["signature"], example["message"]["params"]["result"]["context"]["slot"])
    assert item.result is None


def test_failed_logs_are_skipped_only_when_asked() -> None:
    failed = next(e for e in LOGS_FRAMES if e["message"]["params"]["result"]["value"]["err"] is not None)
    frame = json.dumps(failed["message"])

    assert len(decode_frame(frame)) == 1
    assert decode_frame(frame, skip_failed=True) == []


def test_failed_helius_transaction_skipped_when_asked() -> None:
    message = json.loads(json.dumps(TX_FRAMES[0]["message"]))
    message["params"]["result"]["transaction"]["meta"]["err"] = {"InstructionError": [0, {"Custom": 1}]}

    assert isinstance(decode_frame(json.dumps(message))[0], RawTx)
    assert decode_frame(json.dumps(message), skip_failed=True) == []


def test_block_notification_is_unknown_not_an_error() -> None:
    [item] = decode_frame(json.dumps(EXAMPLES["blockNotification"][0]["message"]))
    assert item == Unknown("blockNotification")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"jsonrpc": "2.0", "result": 4743323479349712, "id": 420}, Subscribed(420, 4743323479349712)),
        ({"jsonrpc": "2.0", "result": True, "id": 2}, Unsubscribed(2, True)),
        (
            {"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params"}, "id": 3},
            RpcError(3, -32602, "Invalid params"),
        ),
        (
            {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None},
            RpcError(None, -32700, "Parse error"),
        ),
        (
            {"jsonrpc": "2.0", "method": "slotNotification", "params": {"result": SLOT, "subscription": 5}},
            SlotTick(76, 75, 44),
        ),
        (
            {"jsonrpc": "2.0", "method": "signatureNotification", "params": {"result": {}, "subscription": 1}},
            Unknown("signatureNotification"),
        ),
    ],
)
def test_protocol_messages(message: dict[str, Any], expected: object) -> None:
    assert decode_frame(json.dumps(message)) == [expected]


def test_transaction_details_signatures_gives_a_signature_only_item() -> None:
    message = {
        "jsonrpc": "2.0",
        "method": "transactionNotification",
        "params": {"subscription": 1, "result": {"signature": "5moM", "slot": 9, "transactionIndex": 7}},
    }
    assert decode_frame(json.dumps(message)) == [RawTx("5moM", 9)]


def test_a_batch_frame_yields_one_value_per_message() -> None:
    batch = [TX_FRAMES[0]["message"], {"jsonrpc": "2.0", "result": 7, "id": 1}, "not an object"]

    items = decode_frame(json.dumps(batch))

    assert [type(i) for i in items] == [RawTx, Subscribed, Malformed]


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        b"\xff\xfe",
        "[]",
        "42",
        '{"jsonrpc":"2.0","id":1}',
        '{"jsonrpc":"2.0","method":7}',
        '{"jsonrpc":"2.0","method":"transactionNotification","params":{"subscription":1}}',
        '{"jsonrpc":"2.0","method":"transactionNotification","params":{"result":{"slot":"9","signature":"x"}}}',
        '{"jsonrpc":"2.0","method":"transactionNotification","params":{"result":{"slot":9,"transaction":{"meta":{}}}}}',
        '{"method":"logsNotification","params":{"result":{"context":{"slot":1},"value":{"signature":null}}}}',
        '{"jsonrpc":"2.0","method":"slotNotification","params":{"result":{"slot":true}}}',
        '{"jsonrpc":"2.0","error":"boom","id":1}',
    ],
)
def test_malformed_frames_are_values_not_exceptions(frame: str | bytes) -> None:
    [item] = decode_frame(frame)
    assert isinstance(item, Malformed) and item.reason


def test_signature_and_keys_of_recorded_results() -> None:
    for signature, row in mainnet_transactions().items():
        assert tx_signature(row["result"]) == signature
        assert tx_account_keys(row["result"])  # every fixture, json or jsonParsed, has keys
    assert tx_account_keys({"transaction": None}) == ()

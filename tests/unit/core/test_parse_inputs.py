"""Parser robustness: every encoding of one transaction reads the same; bad input says what is wrong."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from core.errors import ParseError
from core.mints import SOL_MINT
from core.parse import parse_transaction
from tests.fixtures import MAINNET, mainnet_transactions, transaction

ENCODINGS = json.loads((MAINNET / "encodings_example.json").read_text())


@pytest.mark.parametrize("encoding", ["json", "json_parsed", "base64"])
def test_every_encoding_of_one_transaction_reads_the_same(encoding: str) -> None:
    parsed = parse_transaction(ENCODINGS[encoding]["response"])  # a full JSON-RPC response

    assert parsed.signature.startswith("4zExa66h")
    assert parsed.wallet == "5p8qKVyKthA9DUb1rwQDzjcmTkaZdwN97J3LiaEywUjd"
    assert parsed.signers == ("5p8qKVyKthA9DUb1rwQDzjcmTkaZdwN97J3LiaEywUjd",)
    assert parsed.flows == {SOL_MINT: Decimal(0)}  # a vote: only the fee moved, and fees are added back
    assert parsed.fee_lamports == 5000
    assert parsed.trades == ()


def test_v0_lookup_table_keys_index_the_balances_in_json_encoding() -> None:
    # A json-encoded v0 swap whose wallet token accounts sit behind lookup tables.
    rows = [r for r in mainnet_transactions().values() if r["result"]["meta"].get("loadedAddresses", {}).get("writable")]
    assert rows, "fixtures hold v0 json transactions with loaded addresses"
    for row in rows:
        result = row["result"]
        parsed = parse_transaction(result)
        static = len(result["transaction"]["message"]["accountKeys"])
        loaded = result["meta"]["loadedAddresses"]
        assert static + len(loaded["writable"]) + len(loaded["readonly"]) == len(result["meta"]["preBalances"])
        assert parsed.signature == row["signature"]


def test_rent_of_opened_accounts_is_netted_and_tips_stay_out_of_the_price() -> None:
    # pump.fun buy: the wallet opened its token account (2,039,280 lamports of rent) and
    # paid 0.003 SOL to a bot; the fee (47,000) is added back.
    sig = "4XQZckrFKjaLHM68kJH7dpSPo2TCfMkwjYhLdcNRu5QdJTjAEehsS5UMaZKDXADD46d8v4XnuyuvLV36rNRTKhn7"
    parsed = parse_transaction(transaction(sig))
    native = 30129394 - 115657476
    assert parsed.flows[SOL_MINT] == Decimal(native + 47000 + 2039280).scaleb(-9)
    (trade,) = parsed.trades
    # The bot's 0.003 SOL is a tip, kept out of the pool price.
    assert trade.quote_amount == -Decimal(native + 47000 + 2039280 + 3_000_000).scaleb(-9)


def test_failed_transaction_has_flows_but_no_trades() -> None:
    failed = [r for r in mainnet_transactions().values() if r["kind_hint"] == "failed"]
    assert len(failed) == 3
    for row in failed:
        parsed = parse_transaction(row["result"])
        assert parsed.failed and parsed.trades == ()


def _broken(mutate) -> dict:
    raw = copy.deepcopy(transaction(next(iter(mainnet_transactions()))))
    mutate(raw)
    return raw


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("meta"), "meta is missing"),
        (lambda r: r.pop("slot"), "slot is missing"),
        (lambda r: r["transaction"].pop("signatures"), "signatures is missing"),
        (lambda r: r["transaction"]["message"].pop("accountKeys"), "accountKeys is missing"),
        (lambda r: r["meta"]["preBalances"].pop(), "does not match balance count"),
        (lambda r: r["meta"]["postTokenBalances"][0].pop("uiTokenAmount"), "postTokenBalances entry is malformed"),
        (lambda r: r.__setitem__("blockTime", "yesterday"), "blockTime is not an integer"),
    ],
)
def test_unreadable_input_raises_parse_error_naming_the_part(mutate, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_transaction(_broken(mutate))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "expected a JSON object"),
        ({"jsonrpc": "2.0", "result": None, "id": 1}, "transaction not found"),
        ({"slot": 1, "meta": {}, "transaction": ["AAAA", "base58"]}, "unsupported transaction encoding"),
        ({"slot": 1, "meta": {}, "transaction": ["!!!!", "base64"]}, "do not decode"),
    ],
)
def test_non_transactions_are_refused_clearly(raw, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_transaction(raw)


def test_flows_for_a_wallet_that_is_not_the_fee_payer() -> None:
    # The token owner behind a delegated Jupiter route: no fee, its own legs only.
    sig = "5SnGKXqNQ6zYGfNHQwHWwRtbxnYHUHLbANXgpvCLuXD1LA5paStRBcuXwu2T5eM9xsVWFQTzeUNwPWx6UAQhUb2t"
    parsed = parse_transaction(transaction(sig), wallet="FMFot66s6R4bxoWAtYjf2Vd8cVQAc5ewiY2KMc5deoEh")
    assert parsed.fee_lamports == 0
    assert parsed.flows["DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"] == Decimal("-214663.35085")
    # Three real legs (BONK out; SOL and a little USDC in): reported, never forced into a price.
    assert parsed.trades == ()

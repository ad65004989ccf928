"""The scenario toolkit writes well-formed transactions: the parser reads what the ledger meant."""

from __future__ import annotations

import pytest

from core.mints import SOL_MINT
from core.parse import parse_transaction
from tests.scenarios import World
from tests.scenarios.random_world import random_world


def _check(world: World) -> int:
    checked = 0
    for tx in world.txs:
        parsed = parse_transaction(tx.result)
        assert parsed.signature == tx.signature and parsed.slot == tx.slot and parsed.failed is tx.failed
        for wallet, expected in tx.expected.items():
            view = parse_transaction(tx.result, wallet=wallet)
            assert view.flows == expected.flows, (wallet, view.flows, expected.flows)
            assert view.trades == expected.trades, (wallet, view.trades, expected.trades)
            checked += 1
        if tx.failed:
            assert parsed.trades == ()
    return checked


@pytest.mark.parametrize("seed", range(6))
def test_random_worlds_parse_as_intended(seed: int) -> None:
    assert _check(random_world(seed)) > 20


@pytest.mark.parametrize("encoding", ["json", "jsonParsed"])
def test_every_kind_of_transaction_in_each_encoding(encoding: str) -> None:
    w = World(encoding=encoding)  # type: ignore[arg-type]
    alice, tok, other = w.wallet("alice"), w.token("TOK"), w.token("OTHER", decimals=9)
    w.sol_price(150)
    w.buy(alice, tok, 100, "1")  # USDC-quoted; creates alice's TOK account (rent added back)
    w.buy(alice, tok, 150, "0.01", quote=SOL_MINT)  # SOL-quoted (fee added back)
    w.sell(alice, tok, 50, "2")
    w.swap(alice, (tok, 10), (other, 5))  # token -> token
    w.deposit(alice, tok, 7)  # a transfer in, someone else pays
    w.transfer(alice, w.market[0], SOL_MINT, "0.25")  # a SOL transfer out
    w.swap(alice, (tok, 1), (other, 1), failed=True)
    assert _check(w) == 14  # both sides (trader and pool or receiver) of the 7 that did not fail


def test_encodings_have_their_own_shapes() -> None:
    w = World(encoding="json")
    alice, tok = w.wallet("alice"), w.token("TOK")
    json_tx = w.buy(alice, tok, 1, "1").result
    w.encoding = "jsonParsed"
    parsed_tx = w.buy(alice, tok, 1, "1").result
    assert isinstance(json_tx["transaction"]["message"]["accountKeys"][0], str)
    assert json_tx["meta"]["loadedAddresses"]["writable"]  # the pool's accounts come from a lookup table
    keys = parsed_tx["transaction"]["message"]["accountKeys"]
    assert keys[0] == {"pubkey": alice, "signer": True, "writable": True, "source": "transaction"}
    assert any(k["source"] == "lookupTable" for k in keys)
    assert "loadedAddresses" not in parsed_tx["meta"]
    balance = json_tx["meta"]["postTokenBalances"][0]
    assert set(balance) == {"accountIndex", "mint", "owner", "programId", "uiTokenAmount"}
    assert set(balance["uiTokenAmount"]) == {"amount", "decimals", "uiAmount", "uiAmountString"}

"""The parser against real mainnet transactions and what peer parsers assert about them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.mints import SOL_MINT, USDC_MINT
from core.models import Side
from core.parse import parse_transaction
from core.parse.accounts import owned_token_accounts
from tests.scenarios.gifts import GiftStory
from tests.fixtures import expectations, mainnet_transactions, net_flows, transaction

FLOW_ROWS = net_flows()


def _id(row: dict) -> str:
    return f"{row['signature'][:8]}-{row['role']}-{row['wallet'][:4]}"


@pytest.mark.parametrize("row", FLOW_ROWS, ids=[_id(r) for r in FLOW_ROWS])
def test_net_flows_agree_with_peer_oracle(row: dict) -> None:
    parsed = parse_transaction(transaction(row["signature"]), wallet=row["wallet"])

    assert parsed.failed is row["failed"]
    for mint in row["exact"]:
        assert parsed.flows.get(mint, Decimal(0)) == Decimal(row["flows"][mint]), mint
    for mint, expected in row["flows"].items():
        if mint in row["exact"]:
            continue
        expected_d = Decimal(expected)
        diff = abs(parsed.flows.get(mint, Decimal(0)) - expected_d)
        rel = Decimal(str(row["tolerance"].get(mint, 0))) * abs(expected_d)
        absolute = Decimal(str(row["abs_tolerance"].get(mint, 0)))
        assert diff <= max(rel, absolute), (mint, parsed.flows.get(mint), expected)


def test_every_fixture_parses_and_failed_ones_have_no_trades() -> None:
    for signature, row in mainnet_transactions().items():
        parsed = parse_transaction(row["result"])
        assert parsed.signature == signature
        assert parsed.wallet == parsed.signers[0]
        if parsed.failed:
            assert parsed.trades == ()
            assert row["kind_hint"] == "failed"


def _trade(signature: str, wallet: str):
    parsed = parse_transaction(transaction(signature), wallet=wallet)
    assert len(parsed.trades) == 1, parsed
    return parsed.trades[0]


def _pumpfun_cases():
    for exp in expectations():
        e = exp["expected"]
        if isinstance(e, dict) and e.get("platform") == "pumpfun" and "actions[0].type" in e:
            yield pytest.param(exp, id=exp["signature"][:8])


@pytest.mark.parametrize("exp", list(_pumpfun_cases()))
def test_pumpfun_trades_match_peer(exp: dict) -> None:
    e = exp["expected"]
    trade = _trade(exp["signature"], e["actions[0].info.trader"])
    assert trade.side is (Side.BUY if e["actions[0].type"] == "buy" else Side.SELL)
    assert trade.mint == e["actions[0].info.tokenMint"]
    assert trade.quote_mint == SOL_MINT
    assert trade.program == "pumpfun"
    token_raw = trade.amount.scaleb(6)  # pump.fun mints have 6 decimals
    assert token_raw == Decimal(e["actions[0].info.tokenAmount"])
    # solAmount excludes pump.fun's ~1% protocol fee and creator fee: within 3 %.
    sol = Decimal(e["actions[0].info.solAmount"]).scaleb(-9)
    assert abs(trade.quote_amount - sol) <= sol * Decimal("0.03")


def _jupiter_cases():
    for exp in expectations():
        e = exp["expected"]
        if isinstance(e, list) and e and "inMint" in e[0] and "owner" in e[0]:
            yield pytest.param(exp, id=exp["signature"][:8])


@pytest.mark.parametrize("exp", list(_jupiter_cases()))
def test_jupiter_swaps_match_peer(exp: dict) -> None:
    swap = exp["expected"][0]
    in_mint, out_mint = swap["inMint"], swap["outMint"]
    parsed = parse_transaction(transaction(exp["signature"]), wallet=swap["owner"])
    assert parsed.program == "jupiter_v6"
    moved = {m for m, v in parsed.flows.items() if v}
    if in_mint == out_mint or moved != {in_mint, out_mint}:
        # The peer lists route legs; the owner's net is an arb (zero) or several legs:
        # nothing is forced into a two-leg price.
        assert parsed.trades == ()
        return
    (trade,) = parsed.trades
    gave, got = (trade.mint, trade.quote_mint) if trade.side is Side.SELL else (trade.quote_mint, trade.mint)
    assert (gave, got) == (in_mint, out_mint)
    gave_amount = trade.amount if trade.side is Side.SELL else trade.quote_amount
    got_amount = trade.quote_amount if trade.side is Side.SELL else trade.amount
    tx = transaction(exp["signature"])
    decimals = {
        b["mint"]: b["uiTokenAmount"]["decimals"]
        for b in tx["meta"]["preTokenBalances"] + tx["meta"]["postTokenBalances"]
    }
    fee = Decimal(swap.get("feeAmount", 0)) if swap.get("feeMint") == out_mint else Decimal(0)
    expected_in = Decimal(swap["inAmount"]).scaleb(-decimals[in_mint])
    expected_out = (Decimal(swap["outAmount"]) - fee).scaleb(-decimals[out_mint])
    for mint, ours, theirs in ((in_mint, gave_amount, expected_in), (out_mint, got_amount, expected_out)):
        if mint == SOL_MINT:  # the wallet's SOL also carries rent, tips and fees
            assert abs(ours - theirs) <= max(theirs * Decimal("0.03"), Decimal("0.01"))
        else:
            assert ours == theirs, mint


TOKEN_ACCOUNT_ROWS = [r for r in expectations() if "actions[0].info.traderTokenAccount" in r["expected"]]


@pytest.mark.parametrize("row", TOKEN_ACCOUNT_ROWS, ids=[r["signature"][:8] for r in TOKEN_ACCOUNT_ROWS])
def test_owned_token_accounts_find_the_traders_account_peers_name(row: dict) -> None:
    expected = row["expected"]
    trader, mint = expected["actions[0].info.trader"], expected["actions[0].info.tokenMint"]

    found = owned_token_accounts(transaction(row["signature"]), {trader})

    assert found[expected["actions[0].info.traderTokenAccount"]] == (trader, mint)
    assert {owner for owner, _ in found.values()} == {trader}


@pytest.mark.parametrize("encoding", ["json", "jsonParsed"])
def test_owned_token_accounts_are_the_accounts_the_ledger_opened(encoding: str) -> None:
    # The toolkit's ledger knows each account independently; its swaps put the pool's
    # accounts in a lookup table, so balance indexes run past the static keys.
    story = GiftStory(encoding=encoding)
    accounts = story.world.ledger.token_accounts

    assert owned_token_accounts(story.buy.result, {story.a}) == {
        accounts[(story.a, story.token)]: (story.a, story.token),
        accounts[(story.a, USDC_MINT)]: (story.a, USDC_MINT),
    }
    gift = owned_token_accounts(story.gift.result, {story.a})  # the receiver's account, its owner unnamed
    assert gift == {accounts[(story.a, story.token)]: (story.a, story.token)}
    assert owned_token_accounts(story.buy.result, {story.b}) == {}  # B is not in A's buy
    assert owned_token_accounts({"meta": {"postTokenBalances": [{"owner": "x", "accountIndex": 0}]}}, {"x"}) == {}
    assert owned_token_accounts({"meta": None}, {"x"}) == {}

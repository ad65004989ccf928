"""ShardState on its own: the per-slot protocol, legs from trades and flows, exact checkpoints."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.mints import SOL_MINT, USDC_MINT
from core.models import ParsedTransaction, Side, TradeEvent
from core.oracle import LegPrices, MintHistory, RefAnswer, Reference
from core.state import ShardState
from core.thresholds import Thresholds

W, TOK = "wallet", "TokenMint"


def tx(sig: str, *trades: TradeEvent, flows: dict[str, D] | None = None, slot: int = 10, t: int = 1_000,
       failed: bool = False) -> ParsedTransaction:
    return ParsedTransaction(sig, slot, t, W, (W,), failed, 5000, None, flows or {}, trades)


def trade(sig: str, side: Side, mint: str, amount: str, quote: str, quote_amount: str, price: str | None) -> TradeEvent:
    return TradeEvent(sig, 10, 1_000, 0, W, side, mint, D(amount), quote, D(quote_amount),
                      None if price is None else D(price), None, 5000)


def shard() -> ShardState:
    s = ShardState(Thresholds(), shard_id=3)
    s.advance(10, 1_000)
    return s


def test_a_priced_buy_makes_a_lot_an_entry_subscriptions_and_a_reference_request() -> None:
    s = shard()
    s.apply(tx("s1", trade("s1", Side.BUY, TOK, "100", USDC_MINT, "150", "1.5")))
    pos = s.positions.position(W, TOK)
    assert pos is not None and pos.entry is not None and pos.entry.signature == "s1"
    assert s.positions.basis(W, TOK) == (D(100), D(150))
    assert TOK in s.watched and SOL_MINT in s.watched  # BHD/RUG watch the mint, IDLE watches SOL
    assert set(s.take_history_requests()) == {TOK, SOL_MINT}
    [request] = s.take_reference_requests()
    assert (request.reply_to, request.mint, request.t, request.wallet) == (3, TOK, 1_000, W)
    assert s.take_reference_requests() == []


def test_sol_quoted_trade_takes_its_price_from_the_oracle() -> None:
    s = shard()
    s.apply(tx("s1", trade("s1", Side.BUY, TOK, "100", SOL_MINT, "1", None)), {("s1", W, 0): LegPrices(D("1.5"))})
    assert s.positions.basis(W, TOK) == (D(100), D(150))


def test_unpriceable_trade_makes_a_lot_without_cost_basis_and_no_entry() -> None:
    s = shard()
    s.apply(tx("s1", trade("s1", Side.BUY, TOK, "100", SOL_MINT, "1", None)))
    assert s.positions.balance(W, TOK) == D(100)
    assert s.positions.entry(W, TOK) is None and s.take_reference_requests() == []


def test_flows_the_trades_do_not_explain_are_transfers() -> None:
    s = shard()
    flows = {SOL_MINT: D("-0.01"), USDC_MINT: D("-150"), TOK: D("100")}  # the swap plus a 0.01 SOL tip
    s.apply(tx("s1", trade("s1", Side.BUY, TOK, "100", USDC_MINT, "150", "1.5"), flows=flows))
    s.apply(tx("s2", flows={SOL_MINT: D("0"), TOK: D("40")}, slot=11))  # a transfer in
    assert s.positions.balance(W, TOK) == D(140)
    assert s.positions.basis(W, TOK) == (D(100), D(150))


def test_a_token_to_token_swap_sells_one_side_and_buys_the_other() -> None:
    s = shard()
    s.apply(tx("s0", flows={"Other": D(10)}))
    swap = trade("s1", Side.SWAP, TOK, "5", "Other", "10", None)
    s.apply(tx("s1", swap), {("s1", W, 0): LegPrices(D(4), D(2))})
    assert s.positions.balance(W, "Other") == 0
    assert s.positions.basis(W, TOK) == (D(5), D(20))
    assert s.positions.entry(W, TOK).price == D(4)


def test_a_failed_transaction_changes_no_position() -> None:
    s = shard()
    s.apply(tx("s1", trade("s1", Side.BUY, TOK, "100", USDC_MINT, "150", "1.5"), failed=True))
    assert s.positions.wallets() == 0


def test_history_gives_a_newly_watched_mint_its_price() -> None:
    s = shard()
    s.apply(tx("s1", trade("s1", Side.BUY, TOK, "100", USDC_MINT, "150", "1.5")))
    s.on_history([MintHistory(SOL_MINT, D(140), 990), MintHistory("Unwatched", D(1), 990)])
    assert s.ctx.prices == {SOL_MINT: D(140)}


def test_an_answered_reference_is_judged_on_the_next_advance() -> None:
    s = shard()
    s.apply(tx("s1", trade("s1", Side.BUY, TOK, "1000", USDC_MINT, "1100", "1.1")))
    [request] = s.take_reference_requests()
    s.on_references([RefAnswer(3, request.key, Reference(D(1), (D(1), D(1), D(1))))])
    [moment] = s.advance(20, 1_061)
    assert moment.kind.value == "BAD_ROUTE" and moment.pct == D("0.1")


def test_snapshot_restore_is_exact_and_keeps_behaving_the_same() -> None:
    a = shard()
    a.apply(tx("s1", trade("s1", Side.BUY, TOK, "100", USDC_MINT, "150", "1.5")))
    a.take_history_requests()
    a.take_reference_requests()
    b = ShardState(Thresholds(), shard_id=3)
    b.restore(a.snapshot())
    assert b.snapshot() == a.snapshot()
    for s in (a, b):
        s.advance(11, 1_000 + 8 * 86_400)
    assert b.snapshot() == a.snapshot()


def test_restore_refuses_other_formats_and_versions() -> None:
    s = ShardState(Thresholds())
    with pytest.raises(ValueError):
        s.restore(b'{"format": "engine", "v": 1, "body": {}}')
    with pytest.raises(ValueError):
        s.restore(s.snapshot().replace(b'"v":1', b'"v":99'))

"""Trade events keyed by (signature, wallet, ix): two tracked wallets trading in one
transaction both keep their row (`ix` numbers one wallet's trades, so both are ix 0)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import asyncpg

from core.engine import Engine
from core.mints import SOL_MINT, USDC_MINT
from core.models import ParsedTransaction, Side
from streams.storage import trade_events_for_wallet, upsert_trade_events, upsert_transactions
from tests.scenarios.chain import RawTx, Ledger, address

BUYER, SELLER, POOL = address("wallet:buyer"), address("wallet:seller"), address("pool")
MINT = address("mint:shared")


def one_transaction_two_traders() -> RawTx:
    """BUYER (fee payer) buys MINT with USDC and SELLER sells MINT for USDC, in one transaction."""
    ledger = Ledger()
    ledger.add_mint(MINT, 6)
    ledger.add_mint(USDC_MINT, 6)
    for owner, mint, amount in ((BUYER, SOL_MINT, 10), (SELLER, SOL_MINT, 10), (BUYER, USDC_MINT, 100),
                                (SELLER, MINT, 1000), (POOL, MINT, 10_000), (POOL, USDC_MINT, 10_000)):
        ledger.fund(owner, mint, amount)
    raw = ledger.raw
    return ledger.transaction(BUYER, [
        (BUYER, POOL, USDC_MINT, raw(USDC_MINT, 10)), (POOL, BUYER, MINT, raw(MINT, 100)),
        (SELLER, POOL, MINT, raw(MINT, 50)), (POOL, SELLER, USDC_MINT, raw(USDC_MINT, 5)),
    ], slot=100, block_time=1_717_000_000, encoding="json")


def engine_views(tx: RawTx) -> list[ParsedTransaction]:
    """What the ingest hands the sink: one view per tracked wallet the transaction mentions."""
    return Engine(tracked=[BUYER, SELLER])._parse(tx.result)


async def rows(conn: asyncpg.Connection) -> list[dict[str, object]]:
    return [dict(r) for r in await conn.fetch("SELECT * FROM trade_events ORDER BY signature, wallet, ix")]


async def test_two_wallets_trading_in_one_transaction_both_keep_their_trade(conn: asyncpg.Connection) -> None:
    tx = one_transaction_two_traders()
    views = engine_views(tx)
    trades = [t for view in views for t in view.trades]
    assert [(t.wallet, t.side, t.ix) for t in trades] == [(BUYER, Side.BUY, 0), (SELLER, Side.SELL, 0)]
    assert len({(t.signature, t.ix) for t in trades}) == 1  # the old key could hold only one of them

    await upsert_transactions(conn, [(views[0], tx.result)])
    written = await upsert_trade_events(conn, trades)

    assert written == 2
    assert await trade_events_for_wallet(conn, BUYER) == [trades[0]]
    assert await trade_events_for_wallet(conn, SELLER) == [trades[1]]


async def test_upserting_the_same_batch_twice_leaves_the_same_rows(conn: asyncpg.Connection) -> None:
    tx = one_transaction_two_traders()
    views = engine_views(tx)
    trades = [t for view in views for t in view.trades]
    await upsert_transactions(conn, [(views[0], tx.result)])

    first = await upsert_trade_events(conn, trades)
    before = await rows(conn)
    again = await upsert_trade_events(conn, trades)
    doubled = await upsert_trade_events(conn, trades + list(reversed(trades)))  # repeats within one batch
    after = await rows(conn)

    assert (first, again, doubled) == (2, 0, 0)
    assert after == before  # updated_at included: an identical replay writes nothing
    assert [(r["wallet"], r["ix"]) for r in after] == sorted([(BUYER, 0), (SELLER, 0)])


async def test_a_change_to_one_wallets_trade_leaves_the_others_alone(conn: asyncpg.Connection) -> None:
    tx = one_transaction_two_traders()
    views = engine_views(tx)
    buyer, seller = (t for view in views for t in view.trades)
    await upsert_transactions(conn, [(views[0], tx.result)])
    await upsert_trade_events(conn, [buyer, seller])
    untouched = [r for r in await rows(conn) if r["wallet"] == SELLER]

    changed = await upsert_trade_events(conn, [replace(buyer, price_usd=Decimal("0.2"))])

    assert changed == 1
    assert [r for r in await rows(conn) if r["wallet"] == SELLER] == untouched
    assert (await trade_events_for_wallet(conn, BUYER))[0].price_usd == Decimal("0.2")

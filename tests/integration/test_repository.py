"""Repository upserts and reads against a real PostgreSQL: idempotent, exact, concurrent-safe."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest

from core.errors import DatabaseError
from core.models import Moment, MomentKind, MomentStatus, ParsedTransaction, Side, TradeEvent
from streams.base import TokenAccount
from streams.storage import (
    follow_token_accounts,
    followed_token_accounts,
    MomentCursor,
    WalletSource,
    get_cursor,
    get_moment,
    list_moments,
    load_checkpoint,
    moments_after_seq,
    save_checkpoint,
    set_cursor,
    track_wallets,
    trade_events_for_wallet,
    tracked_wallets,
    upsert_moments,
    upsert_trade_events,
    upsert_transactions,
)

WALLET = "Wa11et1111111111111111111111111111111111111"
OTHER = "Other22222222222222222222222222222222222222"
MINT = "Mint333333333333333333333333333333333333333"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
T0 = 1_717_000_000


def parsed(signature: str, slot: int = 100, wallet: str = WALLET) -> ParsedTransaction:
    return ParsedTransaction(
        signature=signature, slot=slot, block_time=T0 + slot, wallet=wallet, signers=(wallet,),
        failed=False, fee_lamports=5000, program="Jupiter",
    )


def raw(signature: str, slot: int = 100) -> dict[str, Any]:
    return {"slot": slot, "transaction": {"signatures": [signature]}, "meta": {"err": None, "fee": 5000}}


def trade(signature: str, ix: int = 0, **changes: Any) -> TradeEvent:
    event = TradeEvent(
        signature=signature, slot=100, block_time=T0 + 100, ix=ix, wallet=WALLET, side=Side.BUY, mint=MINT,
        amount=Decimal("1000.5"), quote_mint=USDC, quote_amount=Decimal("12.25"), price_usd=Decimal("0.01224387806"),
        program="Jupiter", fee_lamports=5000,
    )
    return replace(event, **changes)


def moment(moment_id: str, **changes: Any) -> Moment:
    value = Moment(
        id=moment_id, kind=MomentKind.S2E, wallet=WALLET, mint=MINT, severity=Decimal("0.5"), pct=Decimal("0.42"),
        usd_value=Decimal("125.75"), window_start=T0, window_end=T0 + 7 * 86_400, sig_ref=f"sig-{moment_id}",
        slot_ref=100, status=MomentStatus.OPEN, detected_at=T0 + 60, updated_at=T0 + 60,
        explain={"exit_price": Decimal("0.0101"), "peak_price": Decimal("0.0143"), "qty": Decimal("1000.5")},
    )
    return replace(value, **changes)


async def seqs(conn: asyncpg.Connection) -> dict[str, int]:
    return {row["id"]: row["seq"] for row in await conn.fetch("SELECT id, seq FROM moments")}


# --- transactions and trade events -----------------------------------------------------------


async def test_transactions_upsert_is_idempotent_and_follows_a_fork(conn: asyncpg.Connection) -> None:
    items = [(parsed(f"tx{i}", slot=100 + i), raw(f"tx{i}", 100 + i)) for i in range(3)]

    await upsert_transactions(conn, items)
    first = await conn.fetch("SELECT * FROM transactions ORDER BY signature")
    await upsert_transactions(conn, items)
    second = await conn.fetch("SELECT * FROM transactions ORDER BY signature")
    await upsert_transactions(conn, [(parsed("tx1", slot=999), raw("tx1", 999))])
    forked = await conn.fetchrow("SELECT slot, block_time, updated_at, raw FROM transactions WHERE signature = 'tx1'")

    assert [dict(r) for r in first] == [dict(r) for r in second]  # identical replay wrote nothing
    assert first[0]["fee_payer"] == WALLET and first[0]["wallets"] == [WALLET]
    assert first[0]["raw"] == raw("tx0", 100)
    assert forked["slot"] == 999 and int(forked["block_time"].timestamp()) == T0 + 999
    assert forked["raw"]["slot"] == 999


async def test_trade_events_upsert_is_idempotent(conn: asyncpg.Connection) -> None:
    await upsert_transactions(conn, [(parsed("tx1"), raw("tx1")), (parsed("tx2"), raw("tx2"))])
    batch = [trade("tx1", 0), trade("tx1", 1, side=Side.SELL), trade("tx2", 0)]

    written = await upsert_trade_events(conn, batch)
    rewritten = await upsert_trade_events(conn, list(reversed(batch)))
    changed = await upsert_trade_events(conn, [trade("tx2", 0, price_usd=None)])
    stored = await trade_events_for_wallet(conn, WALLET)

    assert (written, rewritten, changed) == (3, 0, 1)
    assert stored == [batch[0], batch[1], trade("tx2", 0, price_usd=None)]


async def test_trade_event_needs_its_transaction(conn: asyncpg.Connection) -> None:
    with pytest.raises(DatabaseError) as caught:
        await upsert_trade_events(conn, [trade("unknown-tx")])

    assert caught.value.detail == "could not save trade events"
    assert "ForeignKeyViolation" in (caught.value.internal or "")


async def test_decimals_round_trip_exactly(conn: asyncpg.Connection) -> None:
    values = [
        Decimal("123456789012345678901234567890.123456789012345678901234567890"),
        Decimal("0.000000000000000000000000000001"),
        Decimal("1.500"),
        Decimal("-0.30"),
    ]
    await upsert_transactions(conn, [(parsed("txd"), raw("txd"))])
    events = [trade("txd", i, amount=v.copy_abs(), quote_amount=v.copy_abs(), price_usd=v) for i, v in enumerate(values)]
    moments = [moment(f"m{i}", pct=v, usd_value=v.copy_abs(), explain={"v": v}) for i, v in enumerate(values)]

    await upsert_trade_events(conn, events)
    await upsert_moments(conn, moments)
    stored_events = await trade_events_for_wallet(conn, WALLET)
    stored_moments = [await get_moment(conn, m.id) for m in moments]

    assert [str(e.price_usd) for e in stored_events] == [str(v) for v in values]  # scale kept, to the digit
    assert [e.amount for e in stored_events] == [v.copy_abs() for v in values]
    assert [m.pct for m in stored_moments if m] == values
    assert [m.explain["v"] for m in stored_moments if m] == [format(v, "f") for v in values]


# --- moments ---------------------------------------------------------------------------------


async def test_moment_upsert_is_idempotent_and_seq_moves_only_on_change(conn: asyncpg.Connection) -> None:
    batch = [moment("a"), moment("b"), moment("c")]

    assert await upsert_moments(conn, batch) == 3
    first = await seqs(conn)
    assert await upsert_moments(conn, list(reversed(batch))) == 0
    assert await seqs(conn) == first

    final = replace(batch[1], status=MomentStatus.FINAL, severity=Decimal("0.8"), updated_at=T0 + 120)
    assert await upsert_moments(conn, [final]) == 1
    after = await seqs(conn)

    assert after["a"] == first["a"] and after["c"] == first["c"]
    assert after["b"] > max(first.values())
    assert await get_moment(conn, "b") == replace(final, explain={k: format(v, "f") for k, v in final.explain.items()})


async def test_stale_versions_never_overwrite_newer_ones(conn: asyncpg.Connection) -> None:
    newest = moment("a", status=MomentStatus.FINAL, severity=Decimal("0.9"), updated_at=T0 + 500)
    await upsert_moments(conn, [newest])
    before = await seqs(conn)

    older = moment("a", severity=Decimal("0.1"), updated_at=T0 + 100)
    reopened = moment("a", status=MomentStatus.OPEN, severity=Decimal("0.9"), updated_at=T0 + 900)

    assert await upsert_moments(conn, [older]) == 0
    assert await upsert_moments(conn, [reopened]) == 0
    stored = await get_moment(conn, "a")
    assert stored is not None and stored.status is MomentStatus.FINAL and stored.severity == Decimal("0.9")
    assert await seqs(conn) == before


async def test_last_version_in_a_batch_wins(conn: asyncpg.Connection) -> None:
    assert await upsert_moments(conn, [moment("a"), moment("a", severity=Decimal("0.7"))]) == 1

    stored = await get_moment(conn, "a")
    assert stored is not None and stored.severity == Decimal("0.7")


async def test_invalid_moment_is_a_database_error_without_sql(conn: asyncpg.Connection) -> None:
    with pytest.raises(DatabaseError) as caught:
        await upsert_moments(conn, [moment("bad", severity=Decimal("1.5"))])

    assert caught.value.detail == "could not save moments"
    assert "INSERT" not in caught.value.detail
    assert "check" in (caught.value.internal or "").lower()


async def test_concurrent_writers_end_with_exactly_the_union(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    ids = [f"m{i:03d}" for i in range(120)]
    await upsert_transactions(conn, [(parsed(f"tx{i:02d}"), raw(f"tx{i:02d}")) for i in range(30)])
    rng = random.Random(7)

    async def writer(n: int) -> None:
        chosen = rng.sample(ids, 60)
        trades = [trade(f"tx{rng.randrange(30):02d}", rng.randrange(4)) for _ in range(40)]
        rng.shuffle(chosen)
        async with pool.acquire() as c, c.transaction():
            await upsert_trade_events(c, trades)
            await upsert_moments(c, [moment(i, severity=Decimal(n % 2) / 2) for i in chosen])
        written_moments.update(chosen)
        written_trades.update((t.signature, t.ix) for t in trades)

    written_moments: set[str] = set()
    written_trades: set[tuple[str, int]] = set()
    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(8))), timeout=30)

    stored_moments = {row["id"] for row in await conn.fetch("SELECT id FROM moments")}
    stored_trades = {(r["signature"], r["ix"]) for r in await conn.fetch("SELECT signature, ix FROM trade_events")}
    assert stored_moments == written_moments
    assert stored_trades == written_trades


async def test_keyset_pagination_is_stable_while_moments_arrive(conn: asyncpg.Connection) -> None:
    # Ties on detected_at are broken by id, so the order is total.
    original = [moment(f"m{i:02d}", detected_at=T0 + (i // 3) * 10) for i in range(25)]
    await upsert_moments(conn, original)
    expected = sorted(original, key=lambda m: (m.detected_at, m.id), reverse=True)

    pages: list[list[Moment]] = []
    cursor: MomentCursor | None = None
    while True:
        page = await list_moments(conn, wallet=WALLET, after=cursor, limit=7)
        if not page:
            break
        pages.append(page)
        cursor = MomentCursor.after(page[-1])
        # Newer moments keep arriving at the head while the client pages back in time.
        await upsert_moments(conn, [moment(f"new{len(pages)}", detected_at=T0 + 10_000 + len(pages))])

    seen = [m.id for page in pages for m in page]
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert seen == [m.id for m in expected]


async def test_list_filters(conn: asyncpg.Connection) -> None:
    await upsert_moments(
        conn,
        [
            moment("a", severity=Decimal("0.2"), detected_at=T0 + 10),
            moment("b", kind=MomentKind.RUG, severity=Decimal("0.9"), detected_at=T0 + 20),
            moment("c", wallet=OTHER, severity=Decimal("0.95"), detected_at=T0 + 30),
        ],
    )

    async def ids(**filters: Any) -> list[str]:
        return [m.id for m in await list_moments(conn, **filters)]

    assert await ids() == ["c", "b", "a"]
    assert await ids(wallet=WALLET) == ["b", "a"]
    assert await ids(wallets=[OTHER]) == ["c"]
    assert await ids(kinds=[MomentKind.RUG, MomentKind.BHD]) == ["b"]
    assert await ids(since=T0 + 20) == ["c", "b"]
    assert await ids(until=T0 + 20) == ["a"]
    assert await ids(min_severity=Decimal("0.9")) == ["c", "b"]
    assert await get_moment(conn, "missing") is None
    with pytest.raises(ValueError):
        await list_moments(conn, limit=0)


async def test_moments_after_seq_lists_changes_in_order(conn: asyncpg.Connection) -> None:
    await upsert_moments(conn, [moment("a"), moment("b")])
    start = min((await seqs(conn)).values()) - 1
    await upsert_moments(conn, [moment("a", severity=Decimal("0.6"))])

    changes = await moments_after_seq(conn, start)

    assert [c.moment.id for c in changes] == ["b", "a"]  # a's update moved it behind b
    assert [c.moment.id for c in await moments_after_seq(conn, changes[0].seq, wallets=[WALLET])] == ["a"]


async def test_notify_fires_on_change_and_not_on_identical_replay(db_dsn: str, conn: asyncpg.Connection) -> None:
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    listener = await asyncpg.connect(db_dsn)
    await listener.add_listener("oof_moments", lambda *args: received.put_nowait(orjson.loads(args[3])))
    try:
        await upsert_moments(conn, [moment("a")])
        first = await asyncio.wait_for(received.get(), timeout=5)
        await upsert_moments(conn, [moment("a")])  # identical: must stay silent
        await upsert_moments(conn, [moment("b")])
        second = await asyncio.wait_for(received.get(), timeout=5)
    finally:
        await listener.close()

    stored = await seqs(conn)
    assert first == {"id": "a", "seq": stored["a"]}
    assert second == {"id": "b", "seq": stored["b"]}  # notifications arrive in commit order


# --- checkpoints, cursors, wallets ----------------------------------------------------------


async def test_checkpoint_round_trip_and_never_goes_back(conn: asyncpg.Connection) -> None:
    snapshot = bytes(range(256)) * 4

    assert await save_checkpoint(conn, 3, snapshot, 1_000, "sigA", shard_count=8) is True
    stored = await load_checkpoint(conn, 3, shard_count=8)
    assert await save_checkpoint(conn, 3, b"older", 999, "sigOld", shard_count=8) is False
    assert await save_checkpoint(conn, 3, b"newer", 1_001, None, shard_count=8) is True

    assert stored is not None
    assert (stored.snapshot, stored.last_slot, stored.last_signature) == (snapshot, 1_000, "sigA")
    latest = await load_checkpoint(conn, 3, shard_count=8)
    assert latest is not None and (latest.snapshot, latest.last_signature) == (b"newer", None)
    assert await load_checkpoint(conn, 3, shard_count=16) is None


async def test_source_cursor_only_advances(conn: asyncpg.Connection) -> None:
    assert await get_cursor(conn, WALLET) is None
    assert await set_cursor(conn, WALLET, "sig10", 10) is True
    assert await set_cursor(conn, WALLET, "sig5", 5) is False
    assert await set_cursor(conn, WALLET, "sig12", 12) is True

    cursor = await get_cursor(conn, WALLET)
    assert cursor is not None and (cursor.last_signature, cursor.last_slot) == ("sig12", 12)


async def test_track_wallets_keeps_the_first_reason(conn: asyncpg.Connection) -> None:
    assert await track_wallets(conn, [WALLET, OTHER, WALLET], WalletSource.CONFIG) == 2
    assert await track_wallets(conn, [OTHER], WalletSource.ANALYZE, user_id="user-1") == 0

    assert await tracked_wallets(conn) == sorted([WALLET, OTHER])
    assert await tracked_wallets(conn, WalletSource.ANALYZE) == []


async def test_followed_token_accounts_keep_their_earliest_slot_and_newest_owner(conn: asyncpg.Connection) -> None:
    first = [TokenAccount("acc1", "alice", "mintA", 200), TokenAccount("acc2", "alice", "mintB", 210),
             TokenAccount("acc3", "bob", "mintA", 220)]
    assert await follow_token_accounts(conn, first) == 3
    assert await follow_token_accounts(conn, first) == 0  # idempotent

    # seen again earlier (a backfill), and acc2 handed to carol (SetAuthority)
    again = [TokenAccount("acc1", "alice", "mintA", 150), TokenAccount("acc2", "carol", "mintB", 300)]
    assert await follow_token_accounts(conn, [*again, *again]) == 0  # duplicates in one batch are fine

    assert await followed_token_accounts(conn, ["alice", "carol", "nobody"]) == [
        TokenAccount("acc1", "alice", "mintA", 150), TokenAccount("acc2", "carol", "mintB", 210)]
    assert await followed_token_accounts(conn, []) == []

"""The moment broadcaster and one client's event stream, against a real PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest_asyncio

from deployments.routes.stream import moment_events
from deployments.sse import MomentBroadcaster, SseSettings, Subscription
from streams.storage import upsert_moments
from tests.unit.deployments.api_extra.conftest import MomentFactory

FAST = SseSettings(heartbeat_s=0.05, client_buffer=64, page=2, keepalive_s=0.5, reconnect_max_s=0.2)
ALICE_W = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
BOB_W = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


@pytest_asyncio.fixture(loop_scope="session")
async def broadcaster(db: asyncpg.Pool) -> AsyncIterator[MomentBroadcaster]:
    hub = MomentBroadcaster(db, FAST)
    yield hub
    await hub.close()


async def save(db: asyncpg.Pool, *moments: object) -> None:
    async with db.acquire() as conn:
        await upsert_moments(conn, list(moments))  # type: ignore[arg-type]


async def receive(sub: Subscription, count: int, timeout: float = 5.0) -> list[tuple[int, str]]:
    got: list[tuple[int, str]] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            item = await sub.next(0.1)
            if item is not None:
                got.append((item.seq, item.moment.id))
    return got


def parse(chunk: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in chunk.decode().splitlines():
        name, _, value = line.partition(": ")
        fields[name] = value
    return fields


async def test_subscribers_receive_committed_moments_filtered_by_wallet(
    broadcaster: MomentBroadcaster, db: asyncpg.Pool, make_moment: MomentFactory
) -> None:
    everyone = await broadcaster.subscribe()
    alice_only = await broadcaster.subscribe(frozenset({ALICE_W}))
    a, b = make_moment(ALICE_W), make_moment(BOB_W)

    await save(db, a)
    await save(db, b)

    assert [m for _, m in await receive(everyone, 2)] == [a.id, b.id]
    assert [m for _, m in await receive(alice_only, 1)] == [a.id]
    await asyncio.sleep(0.1)
    assert await alice_only.next(0.05) is None


async def test_an_update_is_announced_again_with_a_new_seq(
    broadcaster: MomentBroadcaster, db: asyncpg.Pool, make_moment: MomentFactory
) -> None:
    sub = await broadcaster.subscribe()
    first = make_moment(sig_ref="same")
    await save(db, first)
    (seq1, id1), = await receive(sub, 1)
    # (Had the update landed before the broadcaster read the row, only the newest version
    # would be sent: a row is read by its current seq.)
    await save(db, make_moment(sig_ref="same", pct="0.9", updated_at=first.updated_at + 60))

    (seq2, id2), = await receive(sub, 1)

    assert id1 == id2 == first.id and seq2 > seq1


async def test_a_slow_subscriber_is_dropped_not_buffered(
    db: asyncpg.Pool, make_moment: MomentFactory
) -> None:
    hub = MomentBroadcaster(db, SseSettings(client_buffer=2))
    try:
        slow = await hub.subscribe()
        fast = await hub.subscribe()
        moments = [make_moment() for _ in range(5)]
        got: list[str] = []
        for m in moments:  # the fast one reads each as it comes, the slow one never reads
            await save(db, m)
            got += [moment for _, moment in await receive(fast, 1)]

        assert got == [m.id for m in moments]
        assert slow.overflowed and hub.subscriber_count == 1
        assert slow.resume_point(None) is not None
    finally:
        await hub.close()


async def test_the_listener_reconnects_and_rescans_what_it_missed(
    broadcaster: MomentBroadcaster, db: asyncpg.Pool, make_moment: MomentFactory
) -> None:
    sub = await broadcaster.subscribe()
    await save(db, make_moment())
    await receive(sub, 1)
    async with db.acquire() as conn:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
    missed = make_moment()
    await save(db, missed)  # very likely committed while nobody listens

    assert killed >= 1
    assert [m for _, m in await receive(sub, 1)] == [missed.id]


async def test_a_late_commit_with_a_lower_seq_is_still_delivered(
    broadcaster: MomentBroadcaster, db: asyncpg.Pool, make_moment: MomentFactory
) -> None:
    sub = await broadcaster.subscribe()
    early, late = make_moment(), make_moment()
    async with db.acquire() as slow_conn:
        tx = slow_conn.transaction()
        await tx.start()
        await upsert_moments(slow_conn, [early])  # takes the lower seq, commits last
        await save(db, late)
        (late_seq, late_id), = await receive(sub, 1)
        await tx.commit()

    (early_seq, early_id), = await receive(sub, 1)

    assert (late_id, early_id) == (late.id, early.id) and early_seq < late_seq


async def test_stream_resumes_after_last_event_id_without_gaps_or_repeats(
    broadcaster: MomentBroadcaster, db: asyncpg.Pool, make_moment: MomentFactory
) -> None:
    before = [make_moment() for _ in range(5)]
    await save(db, *before)
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT id, seq FROM moments ORDER BY seq")  # the upsert orders by id
    sub = await broadcaster.subscribe()
    stream = moment_events(
        sub, db, last_event_id=rows[1]["seq"], settings=FAST, on_close=lambda: broadcaster.unsubscribe(sub)
    )
    ids: list[str] = []
    try:
        assert (await anext(stream)).startswith(b"retry: ")  # subscribed now
        during = make_moment()
        await save(db, during)  # both in the catch-up read and in the live queue
        await asyncio.sleep(0.2)
        after = make_moment()
        async with asyncio.timeout(5):
            while len(ids) < 5:
                chunk = await anext(stream)
                if chunk.startswith(b"id: "):
                    ids.append(orjson.loads(parse(chunk)["data"])["id"])
                    if ids[-1] == during.id:
                        await save(db, after)
            # Nothing repeated after the switch to live: only heartbeats follow.
            assert [await anext(stream) for _ in range(3)] == [b": ping\n\n"] * 3
    finally:
        await stream.aclose()

    assert ids == [r["id"] for r in rows[2:]] + [during.id, after.id]
    assert broadcaster.subscriber_count == 0


async def test_a_slow_client_gets_an_error_event_telling_it_where_to_resume(
    db: asyncpg.Pool, make_moment: MomentFactory
) -> None:
    settings = SseSettings(heartbeat_s=0.05, client_buffer=2, page=10)
    hub = MomentBroadcaster(db, settings)
    sub = await hub.subscribe()
    stream = moment_events(sub, db, last_event_id=None, settings=settings)
    try:
        await anext(stream)
        first = make_moment()
        await save(db, first)
        event = parse(await anext(stream))
        burst = [make_moment() for _ in range(6)]
        for m in burst:  # while the client is not reading
            await save(db, m)
        async with asyncio.timeout(5):
            while hub.subscriber_count:
                await asyncio.sleep(0.02)
        error = parse(await anext(stream))
    finally:
        await stream.aclose()
        await hub.close()

    assert error["event"] == "error" and error["id"] == event["id"]
    assert orjson.loads(error["data"])["resume_from"] == int(event["id"])
    assert orjson.loads(error["data"])["type"].endswith("/stream-client-too-slow")


async def test_the_listening_connection_is_released_when_nobody_listens(
    db: asyncpg.Pool, make_moment: MomentFactory
) -> None:
    hub = MomentBroadcaster(db, SseSettings(idle_close_s=0.1, keepalive_s=0.05))
    try:
        hub.unsubscribe(await hub.subscribe())
        async with asyncio.timeout(5):
            while hub.listening:
                await asyncio.sleep(0.02)
        again = await hub.subscribe()  # a new run, from a clean slate
        fresh = make_moment()
        await save(db, fresh)

        assert [m for _, m in await receive(again, 1)] == [fresh.id]
    finally:
        await hub.close()

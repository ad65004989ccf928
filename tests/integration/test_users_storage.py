"""Repository functions for wallet links, link nonces and analyze jobs, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from streams.storage import (
    JobStatus,
    claim_next_job,
    consume_link_nonce,
    count_active_jobs,
    create_job,
    create_link_nonce,
    get_job,
    get_link_nonce,
    insert_wallet_link,
    linked_wallets,
    list_wallet_links,
    requeue_stale_jobs,
    update_job_progress,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WALLET = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
OTHER = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


async def test_nonce_is_consumed_once(conn: asyncpg.Connection) -> None:
    await create_link_nonce(conn, "n1", "alice", WALLET, NOW + timedelta(minutes=5))

    first = await consume_link_nonce(conn, "n1", "alice", WALLET, NOW)
    second = await consume_link_nonce(conn, "n1", "alice", WALLET, NOW)

    assert first is not None and first.used_at == NOW
    assert second is None
    stored = await get_link_nonce(conn, "n1")
    assert stored is not None and stored.used_at == NOW


async def test_nonce_is_refused_when_expired_or_not_bound_to_the_caller(conn: asyncpg.Connection) -> None:
    await create_link_nonce(conn, "n2", "alice", WALLET, NOW + timedelta(minutes=5))

    assert await consume_link_nonce(conn, "n2", "mallory", WALLET, NOW) is None
    assert await consume_link_nonce(conn, "n2", "alice", OTHER, NOW) is None
    assert await consume_link_nonce(conn, "n2", "alice", WALLET, NOW + timedelta(minutes=5)) is None
    assert (await get_link_nonce(conn, "n2")).used_at is None  # type: ignore[union-attr]
    assert await get_link_nonce(conn, "missing") is None


async def test_concurrent_consumers_get_the_nonce_exactly_once(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    await create_link_nonce(conn, "n3", "alice", WALLET, NOW + timedelta(minutes=5))

    async def consume() -> object:
        async with pool.acquire() as c:
            return await consume_link_nonce(c, "n3", "alice", WALLET, NOW)

    results = await asyncio.gather(*(consume() for _ in range(8)))

    assert sum(r is not None for r in results) == 1


async def test_wallet_links_are_idempotent_and_per_user(conn: asyncpg.Connection) -> None:
    first = await insert_wallet_link(conn, "alice", WALLET)
    again = await insert_wallet_link(conn, "alice", WALLET)
    await insert_wallet_link(conn, "alice", OTHER)
    await insert_wallet_link(conn, "bob", OTHER)

    assert again.linked_at == first.linked_at
    assert {link.wallet for link in await list_wallet_links(conn, "alice")} == {WALLET, OTHER}
    assert await linked_wallets(conn, "bob") == {OTHER}
    assert await linked_wallets(conn, "bob", among=[WALLET, OTHER]) == {OTHER}
    assert await linked_wallets(conn, "carol") == set()


async def test_job_lifecycle(conn: asyncpg.Connection) -> None:
    job = await create_job(conn, "01J0000000000000000000000A", "alice", [WALLET, OTHER, WALLET], progress={"limit": 50})
    assert job is not None
    assert job.status is JobStatus.QUEUED and job.wallets == (WALLET, OTHER) and job.progress == {"limit": 50}

    claimed = await claim_next_job(conn)
    assert claimed is not None and claimed.id == job.id and claimed.status is JobStatus.RUNNING
    assert claimed.progress == {"limit": 50, "attempts": 1}
    assert await claim_next_job(conn) is None

    updated = await update_job_progress(conn, job.id, {"signatures": 10})
    assert updated is not None and updated.progress == {"limit": 50, "attempts": 1, "signatures": 10}
    done = await update_job_progress(conn, job.id, {"signatures": 12}, status=JobStatus.DONE)
    assert done is not None and done.status is JobStatus.DONE and done.progress["signatures"] == 12
    failed = await update_job_progress(conn, job.id, {}, status="failed", error="rpc unreachable")
    assert failed is not None and failed.error == "rpc unreachable"
    assert await get_job(conn, job.id) == failed
    assert await update_job_progress(conn, "nope", {}) is None


async def test_quota_counts_only_active_jobs(conn: asyncpg.Connection) -> None:
    for i in range(2):
        assert await create_job(conn, f"job{i}", "alice", [WALLET], max_active=2) is not None
    assert await create_job(conn, "job2", "alice", [WALLET], max_active=2) is None
    assert await create_job(conn, "bob0", "bob", [WALLET], max_active=2) is not None

    await update_job_progress(conn, "job0", {}, status=JobStatus.DONE)

    assert await count_active_jobs(conn, "alice") == 1
    assert await create_job(conn, "job3", "alice", [WALLET], max_active=2) is not None


async def test_concurrent_submissions_respect_the_quota(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    async def submit(i: int) -> object:
        async with pool.acquire() as c:
            return await create_job(c, f"race{i}", "alice", [WALLET], max_active=3)

    results = await asyncio.gather(*(submit(i) for i in range(8)))

    assert sum(r is not None for r in results) == 3
    assert await count_active_jobs(conn, "alice") == 3


async def test_two_claimers_never_get_the_same_job(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    ids = {f"claim{i:02d}" for i in range(20)}
    for job_id in sorted(ids):
        await create_job(conn, job_id, "alice", [WALLET])

    async def claimer() -> list[str]:
        got: list[str] = []
        async with pool.acquire() as c:
            while True:
                # Hold each claim in an open transaction a moment, so claimers really overlap.
                async with c.transaction():
                    job = await claim_next_job(c)
                    if job is None:
                        return got
                    got.append(job.id)
                    await asyncio.sleep(0.005)

    a, b, c = await asyncio.gather(claimer(), claimer(), claimer())

    assert not (set(a) & set(b) or set(a) & set(c) or set(b) & set(c))
    assert set(a) | set(b) | set(c) == ids
    assert a and b  # both really took part


async def test_silent_running_jobs_are_requeued_then_given_up(conn: asyncpg.Connection) -> None:
    await create_job(conn, "stale0", "alice", [WALLET])
    claimed = await claim_next_job(conn)
    assert claimed is not None and claimed.id == "stale0"

    # A job that reported a moment ago is left alone: its runner is alive.
    assert await requeue_stale_jobs(conn, stale_after_s=60, max_attempts=2) == ([], [])
    await conn.execute("UPDATE analyze_jobs SET updated_at = now() - interval '2 minutes' WHERE id = 'stale0'")
    assert await requeue_stale_jobs(conn, stale_after_s=60, max_attempts=2) == (["stale0"], [])
    job = await get_job(conn, "stale0")
    assert job is not None and job.status is JobStatus.QUEUED and job.error is None

    again = await claim_next_job(conn)  # second attempt
    assert again is not None and again.progress["attempts"] == 2
    await conn.execute("UPDATE analyze_jobs SET updated_at = now() - interval '2 minutes' WHERE id = 'stale0'")
    assert await requeue_stale_jobs(conn, stale_after_s=60, max_attempts=2) == ([], ["stale0"])
    job = await get_job(conn, "stale0")
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error == "the job was interrupted 2 times; giving up"

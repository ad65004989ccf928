"""Analyze jobs: only linked wallets, a per-user quota of active jobs, and jobs private to their owner."""

from __future__ import annotations

import asyncpg
import pytest
from solders.keypair import Keypair
from ulid import ULID

from core.errors import ForbiddenError, NotFoundError, ValidationError
from deployments.analyze_jobs import AnalyzeJobs, AnalyzeQuotaError, job_to_dict
from deployments.auth import Principal
from streams.storage import JobStatus, insert_wallet_link, tracked_wallets, update_job_progress

ALICE = Principal("user", "alice")
BOB = Principal("user", "bob")
PIPELINE = Principal("service", "pipeline")


@pytest.fixture
def jobs(db: asyncpg.Pool) -> AnalyzeJobs:
    return AnalyzeJobs(db, max_active=2, max_wallets=3)


async def link(db: asyncpg.Pool, user: str) -> str:
    wallet = str(Keypair().pubkey())
    async with db.acquire() as conn:
        await insert_wallet_link(conn, user, wallet)
    return wallet


async def test_submit_queues_a_job_and_tracks_its_wallets(jobs: AnalyzeJobs, db: asyncpg.Pool) -> None:
    wallet = await link(db, "alice")

    job = await jobs.submit("alice", [wallet, wallet], limit=200)

    assert ULID.from_str(job.id)
    assert (job.status, job.wallets, job.progress) == (JobStatus.QUEUED, (wallet,), {"limit": 200})
    body = job_to_dict(job)
    assert body["job_id"] == job.id and body["links"] == {"self": f"/v1/analyze/{job.id}"}
    async with db.acquire() as conn:
        assert wallet in await tracked_wallets(conn)


async def test_wallets_must_be_linked_to_the_caller(jobs: AnalyzeJobs, db: asyncpg.Pool) -> None:
    mine = await link(db, "alice")
    theirs = await link(db, "bob")

    with pytest.raises(ForbiddenError, match=theirs):
        await jobs.submit("alice", [mine, theirs])
    with pytest.raises(ValidationError):
        await jobs.submit("alice", [])
    with pytest.raises(ValidationError):
        await jobs.submit("alice", [mine, "nope"])
    with pytest.raises(ValidationError):
        await jobs.submit("alice", [str(Keypair().pubkey()) for _ in range(4)])


async def test_quota_of_active_jobs(jobs: AnalyzeJobs, db: asyncpg.Pool) -> None:
    wallet = await link(db, "alice")
    first = await jobs.submit("alice", [wallet])
    await jobs.submit("alice", [wallet])

    with pytest.raises(AnalyzeQuotaError) as over:
        await jobs.submit("alice", [wallet])
    assert over.value.status == 409 and over.value.to_problem()["max_active_jobs"] == 2

    async with db.acquire() as conn:
        await update_job_progress(conn, first.id, {"done": True}, status=JobStatus.DONE)
    assert (await jobs.submit("alice", [wallet])).status is JobStatus.QUEUED


async def test_jobs_are_visible_to_their_owner_and_services_only(jobs: AnalyzeJobs, db: asyncpg.Pool) -> None:
    wallet = await link(db, "alice")
    job = await jobs.submit("alice", [wallet])

    assert (await jobs.get(ALICE, job.id)).id == job.id
    assert (await jobs.get(PIPELINE, job.id)).id == job.id
    with pytest.raises(NotFoundError) as foreign:
        await jobs.get(BOB, job.id)
    with pytest.raises(NotFoundError) as missing:
        await jobs.get(ALICE, str(ULID()))
    with pytest.raises(NotFoundError):
        await jobs.get(ALICE, "../../etc")
    # Someone else's job and no job at all are indistinguishable.
    assert foreign.value.to_problem() == missing.value.to_problem()

"""What belongs to a user: wallet links, the nonces that prove them, and analyze jobs.

Time that decides something (a nonce's expiry) is passed in by the caller, so the API can
inject a clock in tests; bookkeeping timestamps (`linked_at`, `updated_at`) use the
database's `now()`. The pipeline drives jobs through `claim_next_job` and
`update_job_progress`; the API only creates and reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from asyncpg import Record

from streams.storage._db import Conn, db_call
from streams.storage.rows import json_text, json_value

__all__ = [
    "Job",
    "JobStatus",
    "LinkNonce",
    "WalletLink",
    "claim_next_job",
    "consume_link_nonce",
    "count_active_jobs",
    "create_job",
    "create_link_nonce",
    "get_job",
    "get_link_nonce",
    "insert_wallet_link",
    "linked_wallets",
    "list_wallet_links",
    "requeue_stale_jobs",
    "update_job_progress",
]


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class WalletLink:
    """`user_id` proved ownership of `wallet` by signing a nonce."""

    user_id: str
    wallet: str
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class LinkNonce:
    """A single-use challenge bound to one user and one wallet."""

    nonce: str
    user_id: str
    wallet: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Job:
    """An analyze job: backfill and detect over `wallets` on behalf of `user_id`."""

    id: str
    user_id: str
    wallets: tuple[str, ...]
    status: JobStatus
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


_NONCE_COLUMNS = "nonce, user_id, wallet, expires_at, used_at"
_JOB_COLUMNS = "id, user_id, wallets, status, progress, error, created_at, updated_at"


def _nonce(row: Record) -> LinkNonce:
    return LinkNonce(row["nonce"], row["user_id"], row["wallet"], row["expires_at"], row["used_at"])


def _job(row: Record) -> Job:
    return Job(
        id=row["id"],
        user_id=row["user_id"],
        wallets=tuple(row["wallets"]),
        status=JobStatus(row["status"]),
        progress=dict(json_value(row["progress"])),
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


# --- wallet links ---------------------------------------------------------------------------


@db_call("could not save the link nonce")
async def create_link_nonce(conn: Conn, nonce: str, user_id: str, wallet: str, expires_at: datetime) -> LinkNonce:
    row = await conn.fetchrow(
        f"INSERT INTO link_nonces (nonce, user_id, wallet, expires_at) VALUES ($1, $2, $3, $4)"
        f" RETURNING {_NONCE_COLUMNS}",
        nonce, user_id, wallet, expires_at,
    )
    return _nonce(row)


@db_call("could not read the link nonce")
async def get_link_nonce(conn: Conn, nonce: str) -> LinkNonce | None:
    row = await conn.fetchrow(f"SELECT {_NONCE_COLUMNS} FROM link_nonces WHERE nonce = $1", nonce)
    return None if row is None else _nonce(row)


@db_call("could not use the link nonce")
async def consume_link_nonce(conn: Conn, nonce: str, user_id: str, wallet: str, now: datetime) -> LinkNonce | None:
    """Mark the nonce used if it is this user's, for this wallet, unused and unexpired at `now`.

    One conditional UPDATE, so of two concurrent attempts exactly one gets the row; None
    means "not usable" (call `get_link_nonce` to say why).
    """
    row = await conn.fetchrow(
        f"UPDATE link_nonces SET used_at = $4"
        f" WHERE nonce = $1 AND user_id = $2 AND wallet = $3 AND used_at IS NULL AND expires_at > $4"
        f" RETURNING {_NONCE_COLUMNS}",
        nonce, user_id, wallet, now,
    )
    return None if row is None else _nonce(row)


@db_call("could not save the wallet link")
async def insert_wallet_link(conn: Conn, user_id: str, wallet: str) -> WalletLink:
    """Link `wallet` to `user_id`; linking twice keeps the first `linked_at`."""
    row = await conn.fetchrow(
        """
        INSERT INTO wallet_links (user_id, wallet) VALUES ($1, $2)
        ON CONFLICT (user_id, wallet) DO UPDATE SET wallet = EXCLUDED.wallet
        RETURNING user_id, wallet, linked_at
        """,
        user_id, wallet,
    )
    return WalletLink(row["user_id"], row["wallet"], row["linked_at"])


@db_call("could not read wallet links")
async def list_wallet_links(conn: Conn, user_id: str) -> list[WalletLink]:
    rows = await conn.fetch(
        "SELECT user_id, wallet, linked_at FROM wallet_links WHERE user_id = $1 ORDER BY linked_at, wallet", user_id
    )
    return [WalletLink(row["user_id"], row["wallet"], row["linked_at"]) for row in rows]


@db_call("could not read wallet links")
async def linked_wallets(conn: Conn, user_id: str, among: Iterable[str] | None = None) -> set[str]:
    """The wallets `user_id` has linked (only those in `among`, when given)."""
    if among is None:
        rows = await conn.fetch("SELECT wallet FROM wallet_links WHERE user_id = $1", user_id)
    else:
        rows = await conn.fetch(
            "SELECT wallet FROM wallet_links WHERE user_id = $1 AND wallet = ANY($2::text[])",
            user_id, sorted(set(among)),
        )
    return {row["wallet"] for row in rows}


# --- analyze jobs ---------------------------------------------------------------------------


@db_call("could not count analyze jobs")
async def count_active_jobs(conn: Conn, user_id: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM analyze_jobs WHERE user_id = $1 AND status IN ('queued', 'running')", user_id
    )


@db_call("could not create the analyze job")
async def create_job(
    conn: Conn,
    job_id: str,
    user_id: str,
    wallets: Iterable[str],
    *,
    progress: Mapping[str, Any] | None = None,
    max_active: int | None = None,
) -> Job | None:
    """Queue a job; None when `user_id` already has `max_active` queued or running jobs.

    The quota check and the insert run under a per-user transaction-scoped advisory lock,
    so two concurrent requests cannot both slip under the limit.
    """
    async with conn.transaction():
        if max_active is not None:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('oof.analyze:' || $1, 0))", user_id)
            active = await conn.fetchval(
                "SELECT count(*) FROM analyze_jobs WHERE user_id = $1 AND status IN ('queued', 'running')", user_id
            )
            if active >= max_active:
                return None
        row = await conn.fetchrow(
            f"INSERT INTO analyze_jobs (id, user_id, wallets, progress) VALUES ($1, $2, $3, $4::text::jsonb)"
            f" RETURNING {_JOB_COLUMNS}",
            job_id, user_id, list(dict.fromkeys(wallets)), json_text(dict(progress or {})),
        )
    return _job(row)


@db_call("could not read the analyze job")
async def get_job(conn: Conn, job_id: str) -> Job | None:
    row = await conn.fetchrow(f"SELECT {_JOB_COLUMNS} FROM analyze_jobs WHERE id = $1", job_id)
    return None if row is None else _job(row)


@db_call("could not claim an analyze job")
async def claim_next_job(conn: Conn) -> Job | None:
    """Take the oldest queued job and mark it running (counting `progress.attempts`); None
    when the queue is empty.

    SKIP LOCKED lets any number of workers claim concurrently: a row another claimer has
    locked is passed over, never handed out twice.
    """
    row = await conn.fetchrow(
        f"""
        UPDATE analyze_jobs SET status = 'running', updated_at = now(),
            progress = progress || jsonb_build_object('attempts', COALESCE((progress->>'attempts')::int, 0) + 1)
        WHERE id = (
            SELECT id FROM analyze_jobs WHERE status = 'queued'
            ORDER BY created_at, id
            FOR UPDATE SKIP LOCKED
            LIMIT 1
        )
        RETURNING {_JOB_COLUMNS}
        """
    )
    return None if row is None else _job(row)


@db_call("could not update the analyze job")
async def update_job_progress(
    conn: Conn,
    job_id: str,
    progress: Mapping[str, Any],
    status: JobStatus | str | None = None,
    error: str | None = None,
) -> Job | None:
    """Merge `progress` into the job's (top-level keys replace), optionally move its status
    and record an error; None when there is no such job."""
    row = await conn.fetchrow(
        f"""
        UPDATE analyze_jobs
        SET progress = progress || $2::text::jsonb,
            status = COALESCE($3, status),
            error = COALESCE($4, error),
            updated_at = now()
        WHERE id = $1
        RETURNING {_JOB_COLUMNS}
        """,
        job_id, json_text(dict(progress)), None if status is None else JobStatus(status).value, error,
    )
    return None if row is None else _job(row)


@db_call("could not requeue stale analyze jobs")
async def requeue_stale_jobs(conn: Conn, stale_after_s: float, max_attempts: int) -> tuple[list[str], list[str]]:
    """Running jobs whose runner went quiet (no progress for `stale_after_s`): back to the queue,
    or failed once they have been tried `max_attempts` times. Returns (requeued ids, failed ids).

    A live runner reports progress (at least a heartbeat) far more often than `stale_after_s`,
    so only a runner that died mid-job loses its job here, whichever process notices.
    """
    rows = await conn.fetch(
        """
        UPDATE analyze_jobs
        SET status = CASE WHEN COALESCE((progress->>'attempts')::int, 0) >= $2 THEN 'failed' ELSE 'queued' END,
            error = CASE WHEN COALESCE((progress->>'attempts')::int, 0) >= $2
                         THEN 'the job was interrupted ' || $2 || ' times; giving up' ELSE error END,
            updated_at = now()
        WHERE status = 'running' AND updated_at < now() - make_interval(secs => $1)
        RETURNING id, status
        """,
        float(stale_after_s), int(max_attempts),
    )
    requeued = [r["id"] for r in rows if r["status"] == "queued"]
    return requeued, [r["id"] for r in rows if r["status"] == "failed"]

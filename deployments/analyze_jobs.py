"""Analyze jobs as the API sees them: submit (ownership + quota), read (own jobs only), render.

A user may analyze only wallets they have linked (403 otherwise) and may have at most
`max_active` jobs queued or running at once (409). Jobs are private: another user's job
answers 404 exactly like a missing one, so ids cannot be probed; services see every job.
`oof:analyze` (`actors.analyze`) takes queued jobs with `streams.storage.claim_next_job`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ulid import ULID

from core.errors import FieldError, ForbiddenError, NotFoundError, OofError, ValidationError
from deployments.auth import Principal
from deployments.linking import ConnectionSource, iso_utc, parse_wallet
from streams.storage import Job, WalletSource, create_job, get_job, linked_wallets, track_wallets

__all__ = ["AnalyzeJobs", "AnalyzeQuotaError", "job_to_dict"]


class AnalyzeQuotaError(OofError):
    """The user already has as many active jobs as allowed; retry once one finishes."""

    type_slug = "analyze-quota-exceeded"
    status = 409
    title = "Too many active analyze jobs"

    def __init__(self, max_active: int) -> None:
        self.max_active = max_active
        super().__init__(f"at most {max_active} analyze jobs may be queued or running at once")

    def extensions(self) -> dict[str, Any]:
        return {"max_active_jobs": self.max_active}


def job_to_dict(job: Job, prefix: str = "/v1") -> dict[str, Any]:
    return {
        "job_id": job.id,
        "status": job.status.value,
        "wallets": list(job.wallets),
        "progress": job.progress,
        "error": job.error,
        "created_at": None if job.created_at is None else iso_utc(job.created_at),
        "updated_at": None if job.updated_at is None else iso_utc(job.updated_at),
        "links": {"self": f"{prefix}/analyze/{job.id}"},
    }


def _new_job_id() -> str:
    return str(ULID())


class AnalyzeJobs:
    """Submission and lookup of analyze jobs over a connection source."""

    def __init__(
        self,
        db: ConnectionSource,
        *,
        max_active: int = 3,
        max_wallets: int = 10,
        new_id: Callable[[], str] = _new_job_id,
    ) -> None:
        self._db = db
        self._max_active = max_active
        self._max_wallets = max_wallets
        self._new_id = new_id

    async def submit(self, user_id: str, wallets: Sequence[str], limit: int | None = None) -> Job:
        """Queue a job over `wallets` (each linked to `user_id`); `limit` caps the backfill per wallet."""
        if not wallets:
            raise ValidationError([FieldError("body.wallets", "give at least one wallet")])
        if len(wallets) > self._max_wallets:
            raise ValidationError([FieldError("body.wallets", f"at most {self._max_wallets} wallets per job")])
        parsed = list(dict.fromkeys(parse_wallet(w, f"body.wallets.{i}") for i, w in enumerate(wallets)))
        # The table has no options column: the request's knobs travel in the initial progress.
        progress = {} if limit is None else {"limit": limit}
        async with self._db.acquire() as conn, conn.transaction():
            owned = await linked_wallets(conn, user_id, among=parsed)
            if missing := [w for w in parsed if w not in owned]:
                raise ForbiddenError(
                    f"link these wallets before analyzing them: {', '.join(missing)}",
                    internal=f"user {user_id!r} asked to analyze unlinked wallets",
                )
            job = await create_job(
                conn, self._new_id(), user_id, parsed, progress=progress, max_active=self._max_active
            )
            if job is None:
                raise AnalyzeQuotaError(self._max_active)
            await track_wallets(conn, parsed, WalletSource.ANALYZE, user_id)
        return job

    async def get(self, principal: Principal, job_id: str) -> Job:
        """The job if `principal` may see it; 404 for a missing id and for another user's job alike."""
        try:
            ULID.from_str(job_id)
        except ValueError:
            raise NotFoundError("no such analyze job") from None
        async with self._db.acquire() as conn:
            job = await get_job(conn, job_id)
        if job is None or (principal.kind == "user" and job.user_id != principal.id):
            raise NotFoundError("no such analyze job")
        return job

"""One analyze job, start to finish: list each wallet's history, run it through a lane, report.

Steps (the job's `progress` follows them, merged into `analyze_jobs.progress`):

1. `listing` — the newest `limit` signatures of every wallet (`getSignaturesForAddress`),
   `signatures: {wallet: n}` as each wallet is listed;
2. `detecting` — the union, in slot order, handed to a `Lane` as signatures still to fetch;
   `processed / fetched / not_found / trades / failed_transactions / last_slot` as the
   lane reports them;
3. `done` — the lane's totals and `moments: {kind: n}`, what the database now holds for
   the job's wallets.

A heartbeat (`heartbeat_at`) is written every `heartbeat_s` throughout, so a job whose
runner died is recognisably silent (`streams.storage.requeue_stale_jobs`). Errors end the
job `failed` with a message meant for the client: an `OofError`'s public detail, a generic
sentence otherwise (the cause goes to the log with the job id).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from core.errors import OofError
from streams import storage
from streams.backfill import SignaturePager, wallet_history
from streams.base import RawTx

__all__ = ["Lane", "LaneFailed", "JobRun", "history_items"]

log = structlog.get_logger("oof.analyze")

OnStatus = Callable[[dict[str, Any]], Awaitable[None]]


class LaneFailed(Exception):
    """The lane's pipeline gave up (an actor kept failing); the job fails, the lane is rebuilt."""


class Lane(Protocol):
    async def run(self, items: list[RawTx], wallets: Sequence[str], on_status: OnStatus) -> dict[str, Any]:
        """Process `items` (slot-ordered) tracking `wallets` from an empty state; the ingest's summary."""
        ...


def history_items(histories: dict[str, list[Any]]) -> list[RawTx]:
    """Every wallet's entries as one signature-deduplicated list in slot order (signatures to fetch)."""
    by_sig: dict[str, int] = {}
    for entries in histories.values():
        for info in entries:
            by_sig.setdefault(info.signature, info.slot)
    # Within a slot the engine orders transactions itself; the sort only has to be stable.
    return [RawTx(sig, slot) for sig, slot in sorted(by_sig.items(), key=lambda kv: (kv[1], kv[0]))]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_FROM_STATUS = {"processed": "tx_in", "fetched": "fetched", "not_found": "not_found", "trades": "trades",
                "failed_transactions": "failed", "parse_errors": "parse_errors", "last_slot": "last_slot"}


class JobRun:
    def __init__(self, job: storage.Job, *, pool: Any, rpc: SignaturePager, lane: Lane, limit: int,
                 heartbeat_s: float) -> None:
        self.job, self.pool, self.rpc, self.lane = job, pool, rpc, lane
        self.limit, self.heartbeat_s = limit, heartbeat_s
        self.log = log.bind(job_id=job.id)

    async def run(self) -> storage.JobStatus:
        """Drive the job to `done` or `failed` (never raises for the job's own errors)."""
        started = time.monotonic()
        heartbeat = asyncio.create_task(self._heartbeat(), name=f"analyze-heartbeat-{self.job.id}")
        try:
            await self._report({"phase": "listing", "limit": self.limit, "started_at": _now()})
            histories = await self._list()
            items = history_items(histories)
            await self._report({"phase": "detecting", "transactions": len(items)})
            summary = await self.lane.run(items, self.job.wallets, self._on_status) if items else {}
            totals = {key: summary.get(src, 0) for key, src in _FROM_STATUS.items()}
            async with self.pool.acquire() as conn:
                moments = await storage.moment_counts(conn, self.job.wallets)
            done = {"phase": "done", **totals, "transactions": len(items), "moments": moments,
                    "finished_at": _now(), "elapsed_s": round(time.monotonic() - started, 3)}
            await self._report(done, status=storage.JobStatus.DONE)
            self.log.info("analyze_job_done", transactions=len(items), processed=totals["processed"],
                          moments=sum(moments.values()), elapsed_s=done["elapsed_s"])
            return storage.JobStatus.DONE
        except Exception as exc:  # noqa: BLE001 - a job's failure must not end the runner
            message = _client_message(exc)
            self.log.warning("analyze_job_failed", error=f"{type(exc).__name__}: {exc}", reported=message)
            await self._report({"phase": "failed", "finished_at": _now()}, status=storage.JobStatus.FAILED,
                               error=message)
            if isinstance(exc, LaneFailed):
                raise  # the runner rebuilds the lane
            return storage.JobStatus.FAILED
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _list(self) -> dict[str, list[Any]]:
        histories: dict[str, list[Any]] = {}
        for wallet in self.job.wallets:
            histories[wallet] = await wallet_history(self.rpc, wallet, self.limit)
            await self._report({"signatures": {w: len(e) for w, e in histories.items()}})
        return histories

    async def _on_status(self, status: dict[str, Any]) -> None:
        ingest = status.get("ingest") or {}
        await self._report({key: ingest[src] for key, src in _FROM_STATUS.items() if src in ingest})

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self._report({"heartbeat_at": _now()})
            except OofError as exc:  # the database blinked: the next beat tries again
                self.log.warning("analyze_heartbeat_failed", reason=exc.detail)

    async def _report(self, progress: dict[str, Any], status: storage.JobStatus | None = None,
                      error: str | None = None) -> None:
        async with self.pool.acquire() as conn:
            await storage.update_job_progress(conn, self.job.id, progress, status=status, error=error)


def _client_message(exc: BaseException) -> str:
    if isinstance(exc, OofError):
        return exc.detail
    if isinstance(exc, LaneFailed):
        return "the analysis pipeline failed; submit the job again later"
    return "the analysis failed on an internal error"

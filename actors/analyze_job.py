"""One analyze job, start to finish: list each wallet's history, fetch it, price it, run it through a lane.

Steps (the job's `progress` follows them, merged into `analyze_jobs.progress`):

1. `listing` — the newest `limit` signatures of every wallet (`getSignaturesForAddress`),
   `signatures: {wallet: n}` as each wallet is listed;
2. `fetching` — the union, in slot order (`transactions`), fetched here in parts of
   `part_size` (`getTransaction`, block times filled in with `getBlockTime`), each part
   kept by the lane (a Ray object) so the runner never holds the whole history;
   `fetched / not_found` as it goes;
3. `pricing` (with `history_prices.provider`) — the market's prices of the time for the
   mints the wallets traded (`actors.analyze_market`), merged into the parts in slot
   order; `market` says what was priced (or why nothing was: the job goes on regardless);
4. `detecting` — the parts through a `Lane`, from an empty state; `processed / trades /
   failed_transactions / parse_errors / last_slot / prices_processed` as the lane reports them;
5. `done` — the lane's totals and `moments: {kind: n}`, what the database now holds for
   the job's wallets.

The lane sees exactly the items made here (block times included: it fetches nothing), so
the same job twice gives the same moments. A heartbeat (`heartbeat_at`) is written every
`heartbeat_s` throughout, so a job whose runner died is recognisably silent
(`streams.storage.requeue_stale_jobs`). Errors end the job `failed` with a message meant for
the client: an `OofError`'s public detail, a generic sentence otherwise (the cause goes to
the log with the job id).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from core.errors import OofError
from core.market_history import JobSpan, merge_by_slot, split_by_slots
from streams import storage
from streams.backfill import SignaturePager, wallet_history
from streams.base import RawTx
from streams.cancel import cancel_and_wait

if TYPE_CHECKING:
    from actors.analyze_market import MarketPrices

__all__ = ["Lane", "LaneFailed", "JobRun", "HistoryRpc", "history_items", "PART_SIZE"]

log = structlog.get_logger("oof.analyze")

OnStatus = Callable[[dict[str, Any]], Awaitable[None]]
PART_SIZE = 500  # transactions fetched (and held by the runner) at a time
_BLOCK_TIME_CONCURRENCY = 8


class LaneFailed(Exception):
    """The lane's pipeline gave up (an actor kept failing); the job fails, the lane is rebuilt."""


class Lane(Protocol):
    def store(self, items: list[Any]) -> Any:
        """Keep one part of the job's input where the lane reads it (a Ray object); its handle."""
        ...

    async def load(self, part: Any) -> list[Any]:
        """A stored part back."""
        ...

    async def run(self, parts: list[Any], wallets: Sequence[str], on_status: OnStatus) -> dict[str, Any]:
        """Process the stored `parts` (slot-ordered, in order) tracking `wallets` from an empty state;
        the ingest's summary."""
        ...


class HistoryRpc(SignaturePager, Protocol):
    async def get_transactions(self, signatures: Iterable[str],
                               encoding: str = "json") -> dict[str, Mapping[str, Any] | None]: ...

    async def get_block_time(self, slot: int) -> int | None: ...


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


_FROM_STATUS = {"processed": "tx_in", "trades": "trades", "failed_transactions": "failed",
                "parse_errors": "parse_errors", "last_slot": "last_slot", "prices_processed": "external_prices"}


class JobRun:
    def __init__(self, job: storage.Job, *, pool: Any, rpc: HistoryRpc, lane: Lane, limit: int,
                 heartbeat_s: float, market: MarketPrices | None = None, part_size: int = PART_SIZE) -> None:
        self.job, self.pool, self.rpc, self.lane = job, pool, rpc, lane
        self.limit, self.heartbeat_s, self.market, self.part_size = limit, heartbeat_s, market, part_size
        self.fetched = self.not_found = 0
        self.log = log.bind(job_id=job.id)

    async def run(self) -> storage.JobStatus:
        """Drive the job to `done` or `failed` (never raises for the job's own errors)."""
        started = time.monotonic()
        heartbeat = asyncio.create_task(self._heartbeat(), name=f"analyze-heartbeat-{self.job.id}")
        try:
            await self._report({"phase": "listing", "limit": self.limit, "started_at": _now()})
            items = history_items(await self._list())
            await self._report({"phase": "fetching", "transactions": len(items)})
            span = self.market.span(self.job.wallets) if self.market is not None else None
            parts, last_slots = await self._fetch(items, span)
            if span is not None and parts:
                parts = await self._price(span, parts, last_slots)
            elif self.market is not None:
                await self._report({"market": self.market.off() if span is None else
                                    {"provider": self.market.settings.provider, "status": "no_trades", "mints": 0}})
            await self._report({"phase": "detecting"})
            summary = await self.lane.run(parts, self.job.wallets, self._on_status) if parts else {}
            totals = {key: summary.get(src, 0) for key, src in _FROM_STATUS.items()}
            async with self.pool.acquire() as conn:
                moments = await storage.moment_counts(conn, self.job.wallets)
            done = {"phase": "done", **totals, "transactions": len(items), "fetched": self.fetched,
                    "not_found": self.not_found, "moments": moments, "finished_at": _now(),
                    "elapsed_s": round(time.monotonic() - started, 3)}
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
            await cancel_and_wait(heartbeat)

    async def _list(self) -> dict[str, list[Any]]:
        histories: dict[str, list[Any]] = {}
        for wallet in self.job.wallets:
            histories[wallet] = await wallet_history(self.rpc, wallet, self.limit)
            await self._report({"signatures": {w: len(e) for w, e in histories.items()}})
        return histories

    async def _fetch(self, items: list[RawTx], span: JobSpan | None) -> tuple[list[Any], list[int]]:
        """The history as stored parts (slot-ordered results) and each part's last slot."""
        parts: list[Any] = []
        last_slots: list[int] = []
        for start in range(0, len(items), self.part_size):
            chunk = items[start : start + self.part_size]
            found = await self.rpc.get_transactions([item.signature for item in chunk])
            results = await self._timed([r for item in chunk if (r := found.get(item.signature)) is not None])
            results.sort(key=lambda r: r["slot"])  # (stable: the listing's order within a slot)
            self.fetched += len(chunk)
            self.not_found += len(chunk) - len(results)
            if results:
                if span is not None:
                    for raw in results:
                        span.add(raw)
                parts.append(self.lane.store(results))
                last_slots.append(results[-1]["slot"])
            await self._report({"fetched": self.fetched, "not_found": self.not_found})
        return parts, last_slots

    async def _timed(self, results: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """`results` with the block times the node left out asked for (event time needs them)."""
        untimed = sorted({r["slot"] for r in results if r.get("blockTime") is None and isinstance(r.get("slot"), int)})
        if not untimed:
            return results
        gate = asyncio.Semaphore(_BLOCK_TIME_CONCURRENCY)

        async def one(slot: int) -> int | None:
            async with gate:
                return await self.rpc.get_block_time(slot)

        times = dict(zip(untimed, await asyncio.gather(*(one(s) for s in untimed))))
        return [r if r.get("blockTime") is not None else {**r, "blockTime": times.get(r.get("slot"))}
                for r in results]

    async def _price(self, span: JobSpan, parts: list[Any], last_slots: list[int]) -> list[Any]:
        """The parts with the market's prices merged in (a part without any is kept as it is)."""
        assert self.market is not None
        await self._report({"phase": "pricing"})
        views, market = await self.market.views(span)
        await self._report({"market": market})
        if not views:
            return parts
        out: list[Any] = []
        for part, extra in zip([*parts, None], split_by_slots(views, last_slots)):
            if part is None:
                if extra:
                    out.append(self.lane.store(extra))  # prices after the last transaction
            else:
                out.append(self.lane.store(merge_by_slot(await self.lane.load(part), extra)) if extra else part)
        return out

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

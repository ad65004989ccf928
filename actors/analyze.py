"""`oof:analyze`: takes queued analyze jobs (`POST /v1/analyze`) and runs each through a lane.

History has its own event time: fed into the live pipeline it would be late data (the live
watermark is already past it). So a job runs through a second, small actor graph — the
lane: `oof-analyze:supervisor`, `…:ingest`, `…:fetch`, `…:prices-0`, `…:shard-00`,
`…:sink` (sizes from `analyze` settings) — made on the first job and reused. Every job
starts it from an empty state and stores no checkpoint (a failed job is simply run
again). The runner fetches the job's transactions itself, in parts kept as Ray objects
(`actors.analyze_job`), and with `history_prices.provider` merges the market's prices of
the time into them (`actors.analyze_market`); the lane's sink upserts transactions, trade
events and moments into the same tables and NOTIFYs them, so SSE clients see them. Moment
ids are deterministic and the sink never rolls a newer or final moment back, so a job
overlapping what live detection found updates rows, never duplicates them.

The loop starts in the constructor, so a restarted runner (`max_restarts`) goes on by
itself. Each poll first requeues jobs whose runner died (silent for `stale_after_s`), then
claims the oldest queued job (`FOR UPDATE SKIP LOCKED`: several runners never share one).

Who stops it: `oof run` stops the runner it started (`stop`, then kills it). A runner the
API's replicas started (detached, `lease_s` set) is kept by them: each replica `hold`s it
on start and every few seconds, and `release`s it when it shuts down; when the last holder
releases it, or nobody has held it for `lease_s` (every replica gone without a word), it
stops and kills itself. A runner started without `lease_s` counts its holders but never
stops for lack of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import ray
import structlog
from ray.exceptions import RayError

from actors.analyze_job import JobRun, LaneFailed, OnStatus
from actors.analyze_market import MarketPrices
from actors.config import PipelineConfig, actor_options, setup_logging
from actors.metrics import pipeline_metrics
from actors.sources import SourceSpec
from actors.supervisor import Supervisor
from core.errors import OofError
from core.settings import AnalyzeSettings, DatabaseSettings, HistoryPricesSettings, SolanaSettings
from streams import storage
from streams.cancel import cancel_and_wait
from streams.rpc import RpcClient

__all__ = ["AnalyzeRunner", "Leases", "RayLane", "lane_config"]

log = structlog.get_logger("oof.analyze")
_STATUS_EVERY_S = 1.0


def lane_config(pipeline: PipelineConfig, analyze: AnalyzeSettings) -> PipelineConfig:
    """The live pipeline's config, resized for jobs, renamed `oof-analyze`, without checkpoints."""
    return dataclasses.replace(pipeline, shard_count=analyze.shard_count, price_shards=analyze.price_shards,
                               lane=f"{pipeline.lane}-analyze", checkpoints=False, resume=False,
                               cpu_budget=analyze.cpu_budget)


class RayLane:
    """The lane's supervisor, made on first use; `reset` kills it so the next job builds a new one."""

    def __init__(self, config: PipelineConfig, solana: SolanaSettings, start_timeout_s: float = 60.0) -> None:
        self.config, self.solana, self.start_timeout_s = config, solana, start_timeout_s
        self.supervisor: Any = None
        self.up = False  # every actor of the lane answered once

    def store(self, items: list[Any]) -> Any:
        return ray.put(items)

    async def load(self, part: Any) -> list[Any]:
        return await part  # type: ignore[no-any-return]

    async def run(self, parts: list[Any], wallets: Sequence[str], on_status: OnStatus) -> dict[str, Any]:
        if self.supervisor is None:
            self.supervisor = Supervisor.options(**actor_options(self.config, "supervisor")).remote(
                self.config, self.solana)
        # The items are complete (block times included): the lane fetches nothing.
        spec = SourceSpec("items", parts=tuple(parts), tracked=tuple(wallets))
        started = time.monotonic()
        try:
            try:
                await asyncio.wait_for(_result(self.supervisor.start.remote(spec)), self.start_timeout_s)
            except TimeoutError:
                raise LaneFailed(f"the lane's supervisor is not running after {self.start_timeout_s:.0f} s"
                                 " (not enough free CPUs for its reservation? see analyze.cpu_budget)") from None
            waiting = asyncio.ensure_future(_result(self.supervisor.wait.remote()))
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=_STATUS_EVERY_S)
                if done:
                    return waiting.result()
                status = await self.supervisor.status.remote()
                self._check_up(status, time.monotonic() - started)
                await on_status(status)
        except RayError as exc:
            cause = _root_cause(exc)
            if isinstance(cause, OofError):
                raise cause from exc  # e.g. the Solana RPC is unreachable: the client may retry later
            raise LaneFailed(f"{type(cause).__name__}: {cause}") from exc

    def _check_up(self, status: dict[str, Any], waited_s: float) -> None:
        """Fail fast when Ray cannot place the lane (CPU reservations) instead of waiting forever."""
        if self.up:
            return
        down = sorted(name for name, actor in status.get("actors", {}).items() if not actor.get("alive"))
        self.up = not down
        if down and waited_s > self.start_timeout_s:
            raise LaneFailed(f"lane actors not running after {self.start_timeout_s:.0f} s: {', '.join(down)}"
                             " (not enough free CPUs for their reservations? see analyze.cpu_budget)")

    async def reset(self) -> None:
        supervisor, self.supervisor, self.up = self.supervisor, None, False
        if supervisor is None:
            return
        try:
            await asyncio.wait_for(_result(supervisor.shutdown.remote()), 10)
        except (RayError, TimeoutError) as exc:
            log.warning("analyze_lane_shutdown_failed", error=type(exc).__name__)
        ray.kill(supervisor, no_restart=True)


async def _result(ref: Any) -> Any:
    return await ref


def _root_cause(exc: BaseException) -> BaseException:
    while getattr(exc, "cause", None) is not None and exc.cause is not exc:  # type: ignore[attr-defined]
        exc = exc.cause  # type: ignore[attr-defined]
    return exc


class Leases:
    """Who holds a runner (API replicas, by id) and when each last said so."""

    def __init__(self, lease_s: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.lease_s, self._clock = lease_s, clock
        self._renewed: dict[str, float] = {}
        self._last = clock()  # the last renewal (or the start): nobody since `lease_s` = lapsed

    def renew(self, holder: str) -> None:
        self._last = self._renewed[holder] = self._clock()

    def release(self, holder: str) -> bool:
        """Drop `holder`; True when that leaves nobody holding it."""
        self._renewed.pop(holder, None)
        return not self.holders()

    def holders(self) -> list[str]:
        """The holders that renewed within `lease_s` (all of them without a lease)."""
        now = self._clock()
        return sorted(h for h, at in self._renewed.items() if self.lease_s is None or now - at <= self.lease_s)

    def lapsed(self) -> bool:
        return self.lease_s is not None and self._clock() - self._last > self.lease_s


@ray.remote
class AnalyzeRunner:
    def __init__(self, analyze: AnalyzeSettings, database: DatabaseSettings, dsn: str, solana: SolanaSettings,
                 lane: PipelineConfig, lease_s: float | None = None,
                 history_prices: HistoryPricesSettings | None = None) -> None:
        setup_logging(lane.log_setup)
        self.analyze, self.database, self.dsn, self.solana = analyze, database, dsn, solana
        self.lane = RayLane(lane, solana, analyze.start_timeout_s)
        self.market = MarketPrices(history_prices or HistoryPricesSettings(), lane.thresholds)
        self.incarnation = uuid.uuid4().hex[:8]
        self.current: str | None = None
        self.counts = {"done": 0, "failed": 0, "requeued": 0, "abandoned": 0}
        self.leases = Leases(lease_s)
        self._closing = False
        self._pool: Any = None
        self._rpc: RpcClient | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop.create_task(self._forever(), name="analyze-runner")
        self._watch = None if lease_s is None else loop.create_task(self._watch_leases(lease_s), name="analyze-leases")
        log.info("analyze_runner_started", incarnation=self.incarnation, lease_s=lease_s)

    async def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "incarnation": self.incarnation}

    async def status(self) -> dict[str, Any]:
        return {"running": not self._loop.done(), "job": self.current, "holders": self.leases.holders(),
                "lease_s": self.leases.lease_s, "incarnation": self.incarnation, **self.counts}

    async def hold(self, holder: str) -> bool:
        """`holder` (an API replica) keeps this runner; False: it is closing, make a new one once it is gone."""
        if self._closing:
            return False
        self.leases.renew(holder)
        return True

    async def release(self, holder: str) -> None:
        """`holder` no longer needs the runner; a leased runner that nobody holds any more stops."""
        if self.leases.release(holder) and self.leases.lease_s is not None and not self._closing:
            await self._close("released")

    async def _watch_leases(self, lease_s: float) -> None:
        while not self.leases.lapsed():
            await asyncio.sleep(lease_s / 4)
        await self._close("lease_lapsed")

    async def _close(self, reason: str) -> None:
        self._closing = True
        log.info("analyze_runner_closing", reason=reason, incarnation=self.incarnation, job_id=self.current)
        await self.stop()
        me = ray.get_runtime_context().current_actor
        # After this call has answered: a detached actor lives until killed (no restart, name freed).
        asyncio.get_running_loop().call_later(0.1, lambda: ray.kill(me, no_restart=True))

    async def stop(self) -> None:
        """Stop taking jobs (a job in progress is abandoned: it is requeued once found silent)."""
        self._closing = True
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        await cancel_and_wait(self._loop)
        await self.lane.reset()
        if self._rpc is not None:
            await self._rpc.aclose()
        if self._pool is not None:
            await self._pool.close()

    async def _forever(self) -> None:
        cfg = self.analyze
        while True:
            try:
                job = await self._next_job()
            except OofError as exc:  # the database is down: try again at the next poll
                log.warning("analyze_poll_failed", reason=exc.detail)
                job = None
            if job is None:
                await asyncio.sleep(cfg.poll_s)
                continue
            try:
                await self._run(job)
            except Exception:  # noqa: BLE001 - e.g. the database went away mid-report: the job is
                # left `running`, silent, and requeued by the next poll after `stale_after_s`
                log.exception("analyze_runner_error", job_id=job.id)

    async def _next_job(self) -> storage.Job | None:
        if self._pool is None:
            self._pool = await storage.create_pool(self.database.model_copy(update={"pool_min": 1, "pool_max": 2}),
                                                   self.dsn)
        async with self._pool.acquire() as conn:
            requeued, abandoned = await storage.requeue_stale_jobs(conn, self.analyze.stale_after_s,
                                                                   self.analyze.max_attempts)
            if requeued or abandoned:
                log.warning("analyze_jobs_requeued", requeued=requeued, abandoned=abandoned)
                self.counts["requeued"] += len(requeued)
                self.counts["abandoned"] += len(abandoned)
                for outcome, ids in (("requeued", requeued), ("abandoned", abandoned)):
                    if ids:
                        pipeline_metrics().analyze_jobs.inc(len(ids), tags={"outcome": outcome})
            return await storage.claim_next_job(conn)

    async def _run(self, job: storage.Job) -> None:
        if self._rpc is None:
            self._rpc = RpcClient.from_settings(self.solana)
        limit = job.progress.get("limit") if isinstance(job.progress.get("limit"), int) else None
        self.current = job.id
        log.info("analyze_job_started", job_id=job.id, wallets=len(job.wallets), limit=limit)
        started, outcome, lane_failed = time.monotonic(), "failed", False
        try:
            run = JobRun(job, pool=self._pool, rpc=self._rpc, lane=self.lane, limit=limit or self.analyze.default_limit,
                         heartbeat_s=self.analyze.heartbeat_s, market=self.market)
            outcome = (await run.run()).value
        except LaneFailed:
            lane_failed = True
        finally:
            self.current = None
            self.counts[outcome] += 1
            pipeline_metrics().analyze_jobs.inc(tags={"outcome": outcome})
            pipeline_metrics().analyze_seconds.observe(time.monotonic() - started, tags={"outcome": outcome})
        if lane_failed:
            await self.lane.reset()  # a fresh graph for the next job

"""`oof:ingest`: source → dedup → fetch → parse/assemble slot runs → batches on the conveyor.

Per emitted source batch it completes the items (`actors.feed`: dedup, `oof:fetch`),
offers them to the `SlotAssembler` (the engine's own dedup / canonical order / late-stale
rules, `core.parse` included) and cuts a batch when `batch_size` views wait — or when the
oldest waiting input is `max_batch_delay_s` old (live latency). Every
`checkpoint_interval_s` (or `checkpoint_every_batches`), and at the end, the batch is a
checkpoint barrier (`actors.conveyor`, `actors.ingest_state`). Backpressure: `emit` awaits
the conveyor, which awaits a free in-flight slot and the bounded sink queue. With a live
source it also polls for wallets tracked since it started and `track`s them (`actors.tracking`),
and, with `jupiter.enabled`, Jupiter's prices of the watched mints (`actors.price_poll`),
offered to the assembler as views of the slot it is building.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

import ray
import structlog

from actors.assembler import SlotAssembler
from actors.batching import Router, WatchTracker, plan_batch
from actors.config import PipelineConfig, setup_logging
from actors.conveyor import Conveyor, Planned
from actors.feed import Feed
from actors.ingest_state import IngestCheckpoints
from actors.metrics import pipeline_metrics
from actors.price_poll import PricePoller
from actors.sink_pump import SinkPump
from actors.sources import SourceSpec
from actors.tracking import poll_tracked, untracked
from core.errors import ParseError
from streams.cancel import cancel_all

__all__ = ["IngestActor"]

log = structlog.get_logger("oof.ingest")
_COUNTS = ("tx_in", "failed", "trades", "duplicates", "fetched", "not_found", "parse_errors", "gaps",
           "wallets_tracked", "external_prices")


@ray.remote
class IngestActor:
    def __init__(self, config: PipelineConfig, prices: list[Any], shards: list[Any], sink: Any, fetch: Any) -> None:
        setup_logging(config.log_setup)
        self.config, self.prices, self.shards, self.sink, self.fetch = config, prices, shards, sink, fetch
        self.incarnation = uuid.uuid4().hex[:8]
        self.router = Router(config.shard_count, config.price_shards)
        self.counts = dict.fromkeys(_COUNTS, 0)
        self.busy = {"assemble_s": 0.0, "plan_s": 0.0}
        self.feed: Feed | None = None
        self.conveyor: Conveyor | None = None
        self.poller: PricePoller | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()  # source batches, the ticker and batch cuts take turns

    async def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "incarnation": self.incarnation}

    async def stop(self) -> None:
        """End the source where it stands; `run` then checkpoints, drains and returns."""
        self._stop.set()

    async def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"running": self.conveyor is not None, **self.counts}
        if self.conveyor is not None:
            out.update(self.conveyor.status())
        if self.poller is not None:
            out["jupiter"] = dict(self.poller.stats)
        return out

    async def track(self, wallets: Sequence[str]) -> int:
        """Track `wallets` from the next source batch on and watch them (live source); returns how many were new.

        Between two source batches (under `_lock`): whatever the assembler has not run yet,
        and everything after, is planned with them. A recording only extends tracking.
        """
        source = self.feed.source if self.feed is not None else None
        if source is None or getattr(self, "assembler", None) is None:
            return 0  # not running
        if not untracked(wallets, self.assembler.tracked, getattr(source, "watched", None)):
            return 0  # the usual poll: nothing new, no need to wait for the lock
        async with self._lock:
            assembler, watched = self.assembler, getattr(source, "watched", None)
            new = untracked(wallets, assembler.tracked, watched)
            if assembler.tracked is not None:
                assembler.tracked = assembler.tracked | frozenset(new)
            added = source.watch(new) if watched is not None else ()
        self.counts["wallets_tracked"] += len(new)
        log.info("wallets_tracked", count=len(new), watched=len(added),
                 tracked=None if assembler.tracked is None else len(assembler.tracked))
        return len(new)

    async def run(self, spec: SourceSpec, run_id: str | None = None) -> dict[str, Any]:
        """Process the source until it ends (a recording) or `stop`; returns a summary. `run_id` (the
        supervisor's, kept when it runs a crashed ingest again) tags the checkpoints (`actors.ingest_state`)."""
        cfg = self.config
        self._stop, self.counts, self.busy = asyncio.Event(), dict.fromkeys(_COUNTS, 0), dict.fromkeys(self.busy, 0.0)
        self.feed = feed = Feed(spec, cfg.batch_size, self.sink, self.fetch, self.counts)
        self.assembler = SlotAssembler(cfg.thresholds, await feed.open())
        self.tracker = WatchTracker(cfg.shard_count)
        self.pump = SinkPump(self.sink, cfg.queue_max_batches)
        self.state = IngestCheckpoints(cfg, self.sink, self.pump, feed.cursors, run_id)
        base = await self.state.load(self.assembler)
        self.number, self.rows, self.oldest = base.number, [], None
        self.barrier_at, self.barrier_batch, self.last_input = time.monotonic(), base.number, time.monotonic()
        self.conveyor = Conveyor(self.prices, self.shards, self.pump, self.tracker, cfg.queue_max_batches,
                                 on_barrier=self.state.persist)
        await self.conveyor.start(base)
        self.started = time.monotonic()  # the graph is up: processing time starts here
        tasks = [asyncio.create_task(self._tick(spec.live), name="ingest-ticker")]
        if spec.live:
            tasks.append(asyncio.create_task(poll_tracked(self.sink, self.track, feed.source.policy.tracked_poll_s),
                                             name="ingest-tracked-poll"))
        if spec.polls_prices:
            self.poller = self._price_poller(spec)
            tasks.append(asyncio.create_task(self.poller.run(self._stop), name="ingest-jupiter-poll"))
        try:
            await feed.source.run(self._emit, self._stop)
            async with self._lock:
                if not spec.live:
                    self.assembler.flush()  # the end of a recording: run its last slot (closes no window)
                await self._cut(final=True)
            await self.conveyor.drain()
        finally:
            await cancel_all(tasks)
            await self.conveyor.close()
            await self.pump.close()
            await feed.close()
            if self.poller is not None:
                await self.poller.client.aclose()
        return self._summary()

    def _price_poller(self, spec: SourceSpec) -> PricePoller:
        from streams.jupiter import JupiterClient

        jupiter, tracker, shards = spec.jupiter, self.tracker, range(self.config.shard_count)
        assert jupiter is not None

        def watched() -> set[str]:
            return set().union(*(tracker.candidates(shard, set()) for shard in shards))

        return PricePoller(JupiterClient.from_settings(jupiter), watched, interval_s=jupiter.price_poll_s,
                           max_mints=jupiter.max_mints)

    def _offer_prices(self) -> None:
        """Polled prices join the slot being assembled (none buffered: they wait for the next one)."""
        poller, assembler = self.poller, self.assembler
        slot = assembler.buffered_slot
        if poller is None or slot is None or not poller.pending:
            return
        for view in poller.take(slot):
            assembler.process(view)

    async def _emit(self, items: Any) -> None:
        async with self._lock:
            self.last_input = time.monotonic()
            if self.oldest is None:
                self.oldest = self.last_input
            inputs = await self.feed.complete(items)  # type: ignore[union-attr]
            started = time.perf_counter()
            for item in inputs:
                try:
                    self.assembler.process(item)
                except ParseError as exc:
                    self.counts["parse_errors"] += 1
                    pipeline_metrics().parse_errors.inc(tags={"source": self.feed.spec.name})  # type: ignore
                    log.warning("ingest_parse_error", reason=exc.detail)
            self._offer_prices()
            parsed = self.assembler.take_parsed()
            self.counts["failed"] += sum(1 for view, _ in parsed if view.failed)
            self.counts["trades"] += sum(len(view.trades) for view, _ in parsed)
            self.rows += parsed
            self.busy["assemble_s"] += time.perf_counter() - started
            if self.assembler.pending_views >= self.config.batch_size:
                await self._cut()

    async def _cut(self, final: bool = False) -> None:
        cfg, assembler, conveyor = self.config, self.assembler, self.conveyor
        assert conveyor is not None
        await conveyor.ready()  # wait for room first: from here on nothing awaits, nothing can be lost
        runs = assembler.take_runs()
        barrier = final or bool(runs) and (time.monotonic() - self.barrier_at >= cfg.checkpoint_interval_s
                                           or self.number - self.barrier_batch >= cfg.checkpoint_every_batches)
        if not runs and not barrier:
            return
        self.number += 1
        started = time.perf_counter()
        price_input, shard_inputs = plan_batch(self.number, runs, router=self.router, tracked=assembler.tracked,
                                               tracker=self.tracker, checkpoint=barrier)
        planned = Planned(self.number, ray.put(price_input), [ray.put(s) for s in shard_inputs], self.rows, barrier,
                          self.state.barrier(assembler, self.number) if barrier else None,
                          runs[-1].slot if runs else conveyor.stats["last_slot"], sum(len(r.views) for r in runs),
                          self.oldest or time.monotonic())
        self.rows = []
        self.busy["plan_s"] += time.perf_counter() - started
        self.oldest = time.monotonic() if assembler.buffered_slot is not None else None
        if barrier:
            self.barrier_at, self.barrier_batch = time.monotonic(), self.number
        conveyor.submit(planned)

    async def _tick(self, live: bool) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(min(0.02, cfg.max_batch_delay_s))
            now = time.monotonic()
            async with self._lock:
                assembler = self.assembler
                if live and assembler.buffered_slot is not None and now - self.last_input >= cfg.flush_idle_s:
                    self._offer_prices()
                    assembler.flush()  # a quiet live stream: do not hold its last slot back forever
                if assembler.runs and self.oldest is not None and now - self.oldest >= cfg.max_batch_delay_s:
                    await self._cut()
                pipeline_metrics().checkpoint_age.set(now - self.conveyor.base.at,  # type: ignore[union-attr]
                                                      tags={"pipeline": "main"})

    def _summary(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        conveyor, assembler, feed = self.conveyor, self.assembler, self.feed
        assert conveyor is not None and feed is not None
        lat = sorted(conveyor.latencies)
        stats, source = assembler.stats, feed.source.stats
        return {
            **self.counts, **conveyor.status(), "name": feed.name, "elapsed_s": round(elapsed, 3),
            "tx_per_s": round(self.counts["tx_in"] / elapsed, 1) if elapsed > 0 else 0.0,
            "source_stats": {k: getattr(source, k) for k in ("received", "malformed", "reconnects", "backfilled")},
            "latency_p50_s": round(lat[len(lat) // 2], 4) if lat else None,
            "latency_p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 4) if lat else None,
            "sink_s": round(self.pump.busy_s, 3), **{k: round(v, 3) for k, v in self.busy.items()},
            "engine": {"slots": stats.slots, "views": stats.views, "duplicates": stats.duplicates,
                       "late": stats.late, "stale": stats.stale},
            "watermark": [assembler.watermark.slot, assembler.watermark.time],
        }

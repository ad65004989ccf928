"""`oof:ingest`: source → dedup → fetch → parse/assemble slot runs → batches on the conveyor.

It runs the configured source and, per emitted source batch: drops signatures it saw
recently, fetches signature-only items and missing block times through `oof:fetch` (one
call each per source batch), offers everything to the `SlotAssembler` (the engine's own
dedup / canonical order / late-stale rules, `core.parse` included) and cuts a batch when
`batch_size` views are waiting — or when the oldest waiting input is `max_batch_delay_s`
old (live latency). Every `checkpoint_interval_s` (or `checkpoint_every_batches`), and
at the end, the batch is a checkpoint barrier (see `actors.conveyor`). Backpressure:
`emit` awaits the conveyor, which awaits a free in-flight slot and the bounded sink queue.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import ray
import structlog

from actors.assembler import SlotAssembler
from actors.batching import Router, SignatureWindow, WatchTracker, plan_batch
from actors.config import PipelineConfig
from actors.conveyor import Conveyor, Planned
from actors.ingest_state import IngestCheckpoints
from actors.metrics import pipeline_metrics
from actors.sink_pump import SinkPump
from actors.sources import ItemsSource, SlotOrderedFile, SourceSpec, fee_payers
from core.errors import ParseError
from core.paths import project_root
from streams.base import Gap, RawTx

__all__ = ["IngestActor"]

log = structlog.get_logger("oof.ingest")


@ray.remote
class IngestActor:
    def __init__(self, config: PipelineConfig, prices: list[Any], shards: list[Any], sink: Any, fetch: Any) -> None:
        self.config, self.prices, self.shards, self.sink, self.fetch = config, prices, shards, sink, fetch
        self.incarnation = uuid.uuid4().hex[:8]
        self.router = Router(config.shard_count, config.price_shards)
        self.counts = {"tx_in": 0, "duplicates": 0, "fetched": 0, "not_found": 0, "parse_errors": 0, "gaps": 0}
        self.conveyor: Conveyor | None = None
        self.assembler: SlotAssembler | None = None
        self.source: Any = None
        self._rpc: Any = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._started = time.monotonic()

    async def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "incarnation": self.incarnation}

    async def stop(self) -> None:
        """End the source where it stands; `run` then checkpoints, drains and returns."""
        self._stop.set()

    async def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"running": self.conveyor is not None, **self.counts}
        if self.conveyor is not None:
            out.update(self.conveyor.status())
        if self.source is not None:
            out["source"] = {k: getattr(self.source.stats, k) for k in ("received", "malformed", "reconnects",
                                                                         "backfilled", "duplicates", "emitted")}
        return out

    async def run(self, spec: SourceSpec) -> dict[str, Any]:
        """Process the source until it ends (a recording) or `stop`; returns a summary."""
        cfg = self.config
        self._stop, self._started, self.spec = asyncio.Event(), time.monotonic(), spec
        self.source, tracked = await self._open(spec)
        self.assembler = SlotAssembler(cfg.thresholds, tracked)
        self.window = SignatureWindow()
        self.tracker = WatchTracker(cfg.shard_count)
        self.pump = SinkPump(self.sink, cfg.queue_max_batches)
        self.state = IngestCheckpoints(cfg, self.sink, self.pump)
        base = await self.state.load(self.assembler)
        self.number, self.rows, self.oldest = base.number, [], None
        self.barrier_at, self.barrier_batch, self.last_input = time.monotonic(), base.number, time.monotonic()
        self.conveyor = Conveyor(self.prices, self.shards, self.pump, self.tracker, cfg.queue_max_batches,
                                 on_barrier=self.state.persist)
        await self.conveyor.start(base)
        ticker = asyncio.create_task(self._tick(spec.live), name="ingest-ticker")
        try:
            await self.source.run(self._emit, self._stop)
            async with self._lock:
                if not spec.live:
                    self.assembler.flush()  # the end of a recording: run its last slot (closes no window)
                await self._cut(final=True)
            await self.conveyor.drain()
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await self.conveyor.close()
            await self.pump.close()
            if self._rpc is not None:
                await self._rpc.aclose()
        return self._summary()

    # -- input --------------------------------------------------------------------------
    async def _open(self, spec: SourceSpec) -> tuple[Any, frozenset[str] | None]:
        from streams.sources import build_source

        cfg = self.config
        tracked = None if spec.tracked is None else frozenset(spec.tracked)
        if spec.kind == "items":
            items = await spec.items if isinstance(spec.items, ray.ObjectRef) else spec.items
            return ItemsSource(items, cfg.batch_size), tracked
        if spec.kind == "file" or not spec.live:
            path = Path(spec.path) if spec.kind == "file" else spec.solana.replay_path(project_root())  # type: ignore
            entries, payers = await asyncio.to_thread(fee_payers, path)
            source = SlotOrderedFile(path, entries, cfg.batch_size) if spec.kind == "file" else build_source(
                spec.solana, batch_size=cfg.batch_size)  # type: ignore[arg-type]
            return source, tracked if tracked is not None else frozenset(payers)
        from actors.fetch import FetchingRpc
        from streams.rpc import RpcClient

        solana = spec.solana
        assert solana is not None
        wallets = sorted({*solana.wallets, *(await self.sink.tracked_wallets.remote())})
        self._rpc = RpcClient.from_settings(solana)  # slots and backfill signatures; fetches go to oof:fetch
        source = build_source(solana, rpc=FetchingRpc(self._rpc, self.fetch), cursor_get=self._cursor_get,
                              cursor_set=self._cursor_set, policy=spec.live_policy,
                              batch_size=min(cfg.batch_size, 1000), wallets=wallets)
        return source, tracked if tracked is not None else frozenset(wallets)

    async def _cursor_get(self, wallet: str) -> str | None:
        return await self.sink.cursor.remote(wallet)

    async def _cursor_set(self, wallet: str, signature: str, slot: int) -> None:
        self.state.cursors[wallet] = (signature, slot)  # stored with the next checkpoint, never ahead of it

    async def _emit(self, items: Any) -> None:
        async with self._lock:
            self.last_input = time.monotonic()
            if self.oldest is None:
                self.oldest = self.last_input
            raws = [i for i in items if isinstance(i, RawTx)]
            others = [i for i in items if not isinstance(i, (RawTx, Gap))]
            for gap in (i for i in items if isinstance(i, Gap)):
                self._gap(gap)
            self.counts["tx_in"] += len(raws) + len(others)
            pipeline_metrics().tx_in.inc(len(raws) + len(others), tags={"source": self.spec.name})
            results = await self._complete(raws)
            for item in [*results, *others]:
                try:
                    self.assembler.process(item)  # type: ignore[union-attr]
                except ParseError as exc:
                    self.counts["parse_errors"] += 1
                    pipeline_metrics().parse_errors.inc(tags={"source": self.spec.name})
                    log.warning("ingest_parse_error", reason=exc.detail)
            self.rows += self.assembler.take_parsed()  # type: ignore[union-attr]
            if self.assembler.pending_views >= self.config.batch_size:  # type: ignore[union-attr]
                await self._cut()

    async def _complete(self, raws: list[RawTx]) -> list[Any]:
        """Fresh transactions as full results: signature-only ones fetched, block times filled in."""
        by_sig = {r.signature: r for r in raws}
        fresh = self.window.fresh(by_sig)
        self.counts["duplicates"] += len(raws) - len(fresh)
        missing = [s for s in fresh if by_sig[s].result is None]
        fetched = await self.fetch.transactions.remote(missing) if missing else {}
        self.counts["fetched"] += len(missing)
        results = []
        for sig in fresh:
            result = by_sig[sig].result if by_sig[sig].result is not None else fetched.get(sig)
            if result is None:
                self.counts["not_found"] += 1
                continue
            results.append(result)
        untimed = sorted({r["slot"] for r in results if r.get("blockTime") is None and isinstance(r.get("slot"), int)})
        if untimed:  # Helius notifications carry no block time; event time needs it
            times = await self.fetch.block_times.remote(untimed)
            results = [r if r.get("blockTime") is not None else {**r, "blockTime": times.get(r.get("slot"))}
                       for r in results]
        return results

    def _gap(self, gap: Gap) -> None:
        self.counts["gaps"] += 1
        lag = (gap.first_slot - gap.last_slot) if gap.first_slot is not None and gap.last_slot is not None else 0
        pipeline_metrics().backfill_lag.set(lag, tags={"source": self.spec.name})
        pipeline_metrics().reconnects.inc(tags={"source": self.spec.name})
        log.info("source_gap", last_slot=gap.last_slot, first_slot=gap.first_slot, wallets=len(gap.wallets))

    # -- batches ------------------------------------------------------------------------
    async def _cut(self, final: bool = False) -> None:
        cfg, assembler = self.config, self.assembler
        assert assembler is not None and self.conveyor is not None
        runs = assembler.take_runs()
        barrier = final or (runs and (time.monotonic() - self.barrier_at >= cfg.checkpoint_interval_s
                                      or self.number - self.barrier_batch >= cfg.checkpoint_every_batches))
        if not runs and not barrier:
            return
        self.number += 1
        price_input, shard_inputs = plan_batch(self.number, runs, router=self.router, tracked=assembler.tracked,
                                               tracker=self.tracker, checkpoint=bool(barrier))
        last_slot = runs[-1].slot if runs else self.conveyor.stats["last_slot"]
        extra = self.state.barrier(assembler, self.number) if barrier else None
        planned = Planned(self.number, ray.put(price_input), [ray.put(s) for s in shard_inputs], self.rows,
                          bool(barrier), extra, last_slot, sum(len(r.views) for r in runs),
                          self.oldest or time.monotonic())
        self.rows = []
        self.oldest = time.monotonic() if assembler.buffered_slot is not None else None
        if barrier:
            self.barrier_at, self.barrier_batch = time.monotonic(), self.number
        await self.conveyor.submit(planned)

    async def _tick(self, live: bool) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(min(0.02, cfg.max_batch_delay_s))
            now = time.monotonic()
            async with self._lock:
                assembler = self.assembler
                assert assembler is not None and self.conveyor is not None
                if live and assembler.buffered_slot is not None and now - self.last_input >= cfg.flush_idle_s:
                    assembler.flush()  # a quiet live stream: do not hold its last slot back forever
                if assembler.runs and self.oldest is not None and now - self.oldest >= cfg.max_batch_delay_s:
                    await self._cut()
                pipeline_metrics().checkpoint_age.set(now - self.conveyor.base.at, tags={"pipeline": "main"})

    def _summary(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self._started
        conveyor, assembler = self.conveyor, self.assembler
        assert conveyor is not None and assembler is not None
        lat = sorted(conveyor.latencies)
        stats = assembler.stats
        return {
            **self.counts, **conveyor.status(), "elapsed_s": round(elapsed, 3),
            "tx_per_s": round(self.counts["tx_in"] / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_p50_s": round(lat[len(lat) // 2], 4) if lat else None,
            "latency_p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 4) if lat else None,
            "sink_s": round(self.pump.busy_s, 3), "engine": {"slots": stats.slots, "views": stats.views,
                                                             "duplicates": stats.duplicates, "late": stats.late,
                                                             "stale": stats.stale},
            "watermark": [assembler.watermark.slot, assembler.watermark.time],
        }


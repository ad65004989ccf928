"""`Conveyor`: planned batches through prices → shards → sink, in order, bounded, crash-safe.

Dispatch is one call per batch per actor: every price actor gets the shared `PriceInput`
(one object in the store) and returns one part per shard; every shard gets its input plus
*the price actors' result references* — Ray hands it the parts once they exist, so the
ingest never waits in the middle and never touches price data. At most
`queue_max_batches` batches are in flight; results are collected in batch order.

Fault tolerance: batches since the last complete checkpoint are *retained* (their inputs
stay in the object store). Every `checkpoint` batch is a barrier: each price actor and
shard returns its snapshot after it, the ingest adds its assembler's, and the set is the
new base (and, with a database, is stored atomically after the moments it covers). When a
price or shard actor dies (Ray restarts it) or answers from the wrong state generation,
the conveyor bumps the generation, restores *every* price actor and shard to the base and
replays the retained batches: all state is a function of the base and the replayed input,
so nothing is lost, and the moments written again are the same upserts (same ids, same
states). Results of older generations are never used.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import structlog
from ray.exceptions import ObjectLostError, RayActorError, RayTaskError

from actors.batching import WatchTracker
from actors.metrics import pipeline_metrics
from actors.protocol import StaleGeneration
from actors.sink_pump import SinkPump
from streams.cancel import cancel_and_wait

__all__ = ["Planned", "Base", "Conveyor", "PipelineFailed"]

log = structlog.get_logger("oof.ingest")
_RECOVERY_ATTEMPTS = 20
_ALIVE_TIMEOUT_S = 120.0


class PipelineFailed(RuntimeError):
    """Recovery gave up, or an actor raised something no replay can fix (a bug)."""


@dataclass
class Planned:
    number: int
    price_input: Any  # ObjectRef of the PriceInput
    shard_inputs: list[Any]  # ObjectRefs of the ShardInputs
    rows: list[Any] | None  # (parsed, raw) for the sink; dropped once written
    checkpoint: bool
    extra: dict[str, Any] | None  # barrier: the ingest's own state as of this batch
    last_slot: int
    views: int
    born: float  # monotonic arrival of the batch's oldest input


@dataclass
class Base:
    """The last complete checkpoint: snapshots (None = empty state) after batch `number`."""

    number: int
    prices: list[bytes | None]
    shards: list[bytes | None]
    at: float = field(default_factory=time.monotonic)


def recoverable(exc: BaseException) -> bool:
    """An actor died / restarted / lost an object: restore and replay. Anything else is a bug."""
    if isinstance(exc, (RayActorError, ObjectLostError, StaleGeneration)):
        return True
    return isinstance(exc, RayTaskError) and isinstance(exc.cause, (RayActorError, ObjectLostError, StaleGeneration))


class Conveyor:
    def __init__(self, prices: list[Any], shards: list[Any], pump: SinkPump, tracker: WatchTracker,
                 queue_max: int, on_barrier: Any) -> None:
        self.prices, self.shards, self.pump, self.tracker = prices, shards, pump, tracker
        self.queue_max = queue_max
        self.on_barrier = on_barrier  # async (planned, metas, results) -> None, after the barrier's write
        # Unique across ingest incarnations: a batch queued by a dead ingest never passes the check.
        self.generation = secrets.randbits(48)
        self.base = Base(0, [None] * len(prices), [None] * len(shards))
        self.retained: deque[Planned] = deque()
        self.inflight: deque[tuple[Planned, list[Any], list[Any]]] = deque()
        self.recoveries = 0
        self.stats = {"batches": 0, "views": 0, "last_slot": -1, "prices_s": 0.0, "shards_s": 0.0}
        self.latencies: deque[float] = deque(maxlen=10_000)  # recent batches: p50 / p99
        self.failed: BaseException | None = None
        self._cond = asyncio.Condition()  # ready() / drain() wait on it; the collector notifies
        self._work = asyncio.Event()  # set by every dispatch
        self._collector: asyncio.Task[None] | None = None

    async def start(self, base: Base) -> None:
        """Restore every actor to `base` and start collecting."""
        self.base = base
        for shard, watched in enumerate(await self._restore_all()):
            self.tracker.reset(shard, watched, base.number)
        self._collector = asyncio.create_task(self._collect_forever(), name="conveyor-collector")

    async def ready(self) -> None:
        """Until a batch may be dispatched (a free in-flight slot): the backpressure point."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.failed is not None or len(self.inflight) < self.queue_max)
        self._raise_if_failed()

    def submit(self, planned: Planned) -> None:
        """Dispatch now (call right after `ready`): synchronous, so a cancelled caller never loses a
        batch it has already taken out of the assembler."""
        self.retained.append(planned)
        self._dispatch(planned)

    async def drain(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.failed is not None or not self.inflight)
        self._raise_if_failed()
        await self.pump.join()

    async def close(self) -> None:
        await cancel_and_wait(self._collector)

    def _raise_if_failed(self) -> None:
        if self.failed is not None:
            raise PipelineFailed(f"pipeline stopped: {self.failed}") from self.failed

    def _dispatch(self, planned: Planned) -> None:
        n, gen = len(self.shards), self.generation
        outs = [p.run_batch.options(num_returns=n + 1).remote(gen, planned.price_input) for p in self.prices]
        results = [shard.run_batch.options(num_returns=2).remote(gen, planned.shard_inputs[j],
                                                                 *[out[j] for out in outs])
                   for j, shard in enumerate(self.shards)]
        self.inflight.append((planned, [out[n] for out in outs], results))
        self._work.set()
        pipeline_metrics().queue_depth.set(len(self.inflight), tags={"stage": "in_flight"})

    async def _collect_forever(self) -> None:
        try:
            while True:
                if not self.inflight:
                    self._work.clear()
                    await self._work.wait()
                    continue
                planned, metas, results = self.inflight[0]
                try:
                    got = await asyncio.gather(*metas, *[meta for meta, _ in results])
                except Exception as exc:  # noqa: BLE001 - sorted by `recoverable`
                    if not recoverable(exc):
                        raise
                    async with self._cond:
                        await self._recover(exc)
                        self._cond.notify_all()
                    continue
                # Still counted in flight until its writes are queued: `drain` cannot slip in between.
                await self._finish(planned, list(got[: len(metas)]), list(got[len(metas) :]),
                                   [moments for _, moments in results])
                async with self._cond:
                    self.inflight.popleft()
                    self._cond.notify_all()
        except asyncio.CancelledError:
            raise  # closed
        except BaseException as exc:
            self.failed = exc
            log.error("pipeline_failed", error=f"{type(exc).__name__}: {exc}")
            async with self._cond:
                self._cond.notify_all()
            raise

    async def _finish(self, planned: Planned, metas: list[Any], results: list[Any], moments: list[Any]) -> None:
        now = time.monotonic()
        metrics = pipeline_metrics()
        for result in results:
            self.tracker.report(result.shard, result.batch, result.watched)
        self.stats["batches"] += 1
        self.stats["views"] += planned.views
        self.stats["last_slot"] = max(self.stats["last_slot"], planned.last_slot)
        self.stats["prices_s"] += max(m.busy_s for m in metas)
        self.stats["shards_s"] += max(r.busy_s for r in results)
        self.latencies.append(now - planned.born)
        metrics.latency.observe(now - planned.born, tags={"pipeline": "main"})
        rows, planned.rows = planned.rows or [], None
        await self.pump.put("write", rows, *moments)  # references: the sink fetches the moments itself
        metrics.queue_depth.set(self.pump.depth, tags={"stage": "sink"})
        if planned.checkpoint:
            self.base = Base(planned.number, [m.snapshot for m in metas], [r.snapshot for r in results], now)
            while self.retained and self.retained[0].number <= planned.number:
                self.retained.popleft()
            await self.on_barrier(planned, metas, results)
        metrics.queue_depth.set(len(self.retained), tags={"stage": "replay_buffer"})

    async def _recover(self, cause: BaseException) -> None:
        for attempt in range(1, _RECOVERY_ATTEMPTS + 1):
            self.recoveries += 1
            self.generation += 1
            self.inflight.clear()
            log.warning("pipeline_recovering", cause=f"{type(cause).__name__}: {str(cause)[:200]}",
                        generation=self.generation, base=self.base.number, replay=len(self.retained), attempt=attempt)
            try:
                await self._restore_all()
            except Exception as exc:  # noqa: BLE001 - another actor died meanwhile: start over
                if not recoverable(exc) and not isinstance(exc, TimeoutError):
                    raise
                cause = exc
                await asyncio.sleep(min(2.0, 0.1 * attempt))
                continue
            for planned in self.retained:
                self._dispatch(planned)
            log.info("pipeline_recovered", generation=self.generation, replayed=len(self.retained))
            return
        raise PipelineFailed(f"could not recover after {_RECOVERY_ATTEMPTS} attempts: {cause}")

    async def _restore_all(self) -> list[frozenset[str]]:
        """Every price actor and shard back to the base; returns the shards' restored subscriptions."""
        actors = [*self.prices, *self.shards]
        async with asyncio.timeout(_ALIVE_TIMEOUT_S):
            for actor in actors:  # a restarting actor answers once it is back
                while True:
                    try:
                        await actor.ping.remote()
                        break
                    except RayActorError:
                        await asyncio.sleep(0.1)
            gen, base = self.generation, self.base
            done = await asyncio.gather(*[p.restore.remote(gen, base.prices[k]) for k, p in enumerate(self.prices)],
                                        *[s.restore.remote(gen, base.shards[j]) for j, s in enumerate(self.shards)])
        return list(done[len(self.prices) :])

    def status(self) -> dict[str, Any]:
        return {"in_flight": len(self.inflight), "replay_buffer": len(self.retained), "sink_queue": self.pump.depth,
                "generation": self.generation, "recoveries": self.recoveries,
                "checkpoint_batch": self.base.number, "checkpoint_age_s": round(time.monotonic() - self.base.at, 3),
                **self.stats}


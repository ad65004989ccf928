"""`oof:supervisor`: builds the actor graph from a `PipelineConfig`, keeps it running, reports.

Graph (names as the Ray dashboard shows them):

    oof:ingest ──► oof:prices-0..M-1 ──► oof:shard-00..N-1 ──► (ingest) ──► oof:sink
        └──► oof:fetch

Every actor restarts on a crash (`max_restarts`). A price or shard restart is recovered by
the ingest (restore the last checkpoint, replay). An ingest restart is recovered here:
`run` is called again with the same run id and resumes from the stored checkpoint (with a
database; with `resume` off, from this run's own) or starts over (in memory: the sink's
upserts make a rerun harmless). `status()` reports per actor:
alive, restarts (a new incarnation id), last slot; plus the ingest's queue depths, lag and
checkpoint age.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import ray
import structlog
from ray.exceptions import RayActorError

from actors.config import PipelineConfig, actor_name, actor_options, setup_logging
from actors.fetch import FetchActor
from actors.ingest import IngestActor
from actors.metrics import pipeline_metrics
from actors.prices import PriceActor
from actors.shard import ShardActor
from actors.sink import SinkActor
from actors.sources import SourceSpec
from core.settings import SolanaSettings

__all__ = ["Supervisor"]

log = structlog.get_logger("oof.supervisor")
_MAX_INGEST_RESTARTS = 10
_PING_TIMEOUT_S = 2.0
_POLL_S = 0.5  # restarts are counted by a changed incarnation id between two polls


@ray.remote
class Supervisor:
    def __init__(self, config: PipelineConfig, solana: SolanaSettings) -> None:
        setup_logging(config.log_setup)
        self.config, self.incarnation = config, uuid.uuid4().hex[:8]
        cfg, th, logs = config, config.thresholds, config.log_setup
        self.sink = SinkActor.options(**actor_options(cfg, "sink")).remote(cfg.dsn, log_setup=logs)
        self.fetch = FetchActor.options(**actor_options(cfg, "fetch")).remote(solana, log_setup=logs)
        self.prices = [PriceActor.options(**actor_options(cfg, "prices", k)).remote(
            th, k, cfg.price_shards, cfg.shard_count, log_setup=logs) for k in range(cfg.price_shards)]
        self.shards = [ShardActor.options(**actor_options(cfg, "shard", j)).remote(th, j, cfg.shard_count,
                                                                                     log_setup=logs)
                       for j in range(cfg.shard_count)]
        self.ingest = IngestActor.options(**actor_options(cfg, "ingest")).remote(
            cfg, self.prices, self.shards, self.sink, self.fetch)
        lane = cfg.lane
        self.actors: dict[str, Any] = {actor_name("ingest", lane=lane): self.ingest,
                                       actor_name("fetch", lane=lane): self.fetch,
                                       actor_name("sink", lane=lane): self.sink,
                                       **{actor_name("prices", k, lane): a for k, a in enumerate(self.prices)},
                                       **{actor_name("shard", j, lane): a for j, a in enumerate(self.shards)}}
        self.seen: dict[str, str] = {}  # actor name -> last incarnation seen
        self.restarts: dict[str, int] = dict.fromkeys(self.actors, 0)
        self.task: asyncio.Task[dict[str, Any]] | None = None
        self.monitor: asyncio.Task[None] | None = None

    async def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "incarnation": self.incarnation}

    async def start(self, spec: SourceSpec) -> None:
        """Run `spec` through the graph (again, once a previous run ended: a rerun restores or resets state)."""
        if self.task is not None and not self.task.done():
            raise RuntimeError("the pipeline is running already")
        self.task = asyncio.create_task(self._run(spec), name="pipeline")
        if self.monitor is None:
            self.monitor = asyncio.create_task(self._watch(), name="monitor")

    async def wait(self) -> dict[str, Any]:
        """The ingest's summary once the source ended (or `stop`); raises if the pipeline failed."""
        assert self.task is not None, "start() first"
        summary = await asyncio.shield(self.task)
        await self._poll()  # count restarts up to the end
        return {**summary, "restarts": dict(self.restarts), "sink": await self.sink.stats.remote()}

    async def stop(self) -> None:
        await self.ingest.stop.remote()

    async def status(self) -> dict[str, Any]:
        actors = await self._poll()
        try:
            ingest = await asyncio.wait_for(self.ingest.status.remote(), _PING_TIMEOUT_S)
        except (RayActorError, TimeoutError):
            ingest = {"running": False}
        done = self.task is not None and self.task.done()
        return {"actors": actors, "ingest": ingest, "done": done}

    async def moments(self) -> list[Any]:
        return await self.sink.moments.remote()

    async def take_recent(self) -> list[Any]:
        return await self.sink.take_recent.remote()

    async def _run(self, spec: SourceSpec) -> dict[str, Any]:
        run_id = uuid.uuid4().hex[:12]  # one per start: a rerun after a crash resumes this run's checkpoints
        for attempt in range(_MAX_INGEST_RESTARTS + 1):
            try:
                return await self.ingest.run.remote(spec, run_id)
            except RayActorError as exc:  # the ingest process died; Ray restarts it
                log.warning("ingest_restarting", attempt=attempt + 1, error=type(exc).__name__)
                await self._poll()
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        raise RuntimeError(f"the ingest failed {_MAX_INGEST_RESTARTS + 1} times")

    async def _watch(self) -> None:
        while True:
            await self._poll()
            await asyncio.sleep(_POLL_S)

    async def _poll(self) -> dict[str, dict[str, Any]]:
        names = list(self.actors)
        replies = await asyncio.gather(*[asyncio.wait_for(self._ping(self.actors[n]), _PING_TIMEOUT_S) for n in names],
                                       return_exceptions=True)
        out: dict[str, dict[str, Any]] = {}
        for name, reply in zip(names, replies):
            if isinstance(reply, BaseException):
                out[name] = {"alive": False, "restarts": self.restarts[name], "error": type(reply).__name__}
                continue
            before = self.seen.get(name)
            if before is not None and before != reply["incarnation"]:
                self.restarts[name] += 1
                pipeline_metrics().restarts.inc(tags={"actor": name})
                log.warning("actor_restarted", actor=name, restarts=self.restarts[name])
            self.seen[name] = reply["incarnation"]
            out[name] = {"alive": True, "restarts": self.restarts[name], **reply}
        return out

    @staticmethod
    async def _ping(actor: Any) -> dict[str, Any]:
        return await actor.ping.remote()

    async def shutdown(self) -> None:
        """Kill every actor of the graph (the driver kills the supervisor itself)."""
        for task in (self.monitor, self.task):
            if task is not None:
                task.cancel()
        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)

"""The ingest's side of checkpoints: what a barrier stores, and where a (re)start resumes.

A checkpoint is one barrier of the whole pipeline: every price actor's and shard's
snapshot after batch n, the ingest's `SlotAssembler` (dedup keys, held-back slot,
watermark) as of cutting batch n, the live source's cursors as of then, and the candle
partials of the interval. With a database they are stored together (`oof:sink`
`checkpoint`) in `shard_checkpoints`, keyed by (shard_count, `actors.config.checkpoint_id`)
and tagged `run:n`; a (re)start resumes only from a complete set with one tag — with
`resume` off (`oof run --fresh`) only from its own run's, which an ingest the supervisor
runs again after a crash shares with its predecessor (the supervisor's run id).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import structlog

from actors.assembler import SlotAssembler
from actors.config import INGEST_KEY_BASE, PipelineConfig, checkpoint_id, checkpoint_kind
from actors.conveyor import Base, Planned
from actors.sink_pump import SinkPump

__all__ = ["IngestCheckpoints", "LayoutChanged", "check_layout", "stored_layouts"]

log = structlog.get_logger("oof.ingest")


class LayoutChanged(RuntimeError):
    """The database holds another layout's checkpoints and none of this one's: re-sharding is not supported."""

    @classmethod
    def of(cls, stored: list[tuple[int, int]], shards: int, price_shards: int) -> LayoutChanged:
        were = ", ".join(f"{n} shards x {m} price actors" for n, m in stored)
        return cls(  # one argument: the exception crosses Ray by pickle
            f"the stored checkpoints are of another pipeline layout ({were}), none of this one ({shards} x "
            f"{price_shards}); re-sharding from checkpoints is not supported: set pipeline.shard_count / "
            f"pipeline.price_shards back, or start from scratch with `oof run --fresh` (wallet state is then "
            f"rebuilt from new transactions only)")


async def stored_layouts(conn: Any) -> list[tuple[int, int]]:
    """(shard count, price actors) of every layout with a stored ingest checkpoint."""
    rows = await conn.fetch("SELECT DISTINCT shard_count FROM shard_checkpoints WHERE shard_count >= $1",
                            INGEST_KEY_BASE)
    return sorted((n, m or 0) for _, _, n, m in (checkpoint_kind(r["shard_count"], 0) for r in rows))


def check_layout(stored: list[tuple[int, int]], shard_count: int, price_shards: int) -> None:
    """LayoutChanged when checkpoints are stored, none of them of this layout: starting empty
    would resume the live cursors with every wallet's position forgotten."""
    if stored and (shard_count, price_shards) not in stored:
        raise LayoutChanged.of(stored, shard_count, price_shards)


class IngestCheckpoints:
    def __init__(self, config: PipelineConfig, sink: Any, pump: SinkPump, cursors: dict[str, tuple[str, int]],
                 run_id: str | None = None) -> None:
        self.config, self.sink, self.pump = config, sink, pump
        self.run_id = run_id or uuid.uuid4().hex[:12]  # the supervisor's: the same for every ingest restart of a run
        self.cursors = cursors  # the live source's positions (`Feed.cursors`), stored with each barrier
        self.keys = [checkpoint_id("ingest", 0, config),
                     *[checkpoint_id("prices", k, config) for k in range(config.price_shards)],
                     *[checkpoint_id("shard", j, config) for j in range(config.shard_count)]]

    def fresh(self) -> Base:
        return Base(0, [None] * self.config.price_shards, [None] * self.config.shard_count)

    async def load(self, assembler: SlotAssembler) -> Base:
        """The stored checkpoint to resume from (restoring `assembler`), or an empty base."""
        cfg = self.config
        if cfg.dsn is None or not cfg.checkpoints:
            return self.fresh()
        rows = await self.sink.load_checkpoints.remote(self.keys)
        tags = {tag for _, _, tag in rows.values()}
        if not cfg.resume and not (len(tags) == 1 and str(next(iter(tags))).startswith(f"{self.run_id}:")):
            # Fresh (`oof run --fresh`) ignores what earlier runs stored, not what this run stored: an
            # ingest the supervisor runs again after a crash resumes from its own run's last barrier.
            # Starting over instead resumed a live source at the cursors that barrier stored with every
            # wallet's state forgotten, and added the candle partials stored so far a second time.
            return self.fresh()
        if not rows:
            others = [layout for layout in await self.sink.checkpoint_layouts.remote()
                      if layout != (cfg.shard_count, cfg.price_shards)]
            check_layout(others, cfg.shard_count, cfg.price_shards)
            return self.fresh()
        if len(rows) != len(self.keys) or len(tags) != 1:
            log.warning("checkpoint_incomplete", found=len(rows), expected=len(self.keys), tags=sorted(map(str, tags)))
            return self.fresh()
        doc = orjson.loads(rows[self.keys[0]][0])
        assembler.restore(doc["assembler"].encode())
        n, m = cfg.shard_count, cfg.price_shards
        base = Base(doc["number"], [rows[k][0] for k in self.keys[1 : 1 + m]], [rows[k][0] for k in self.keys[1 + m :]])
        log.info("checkpoint_restored", tag=tags.pop(), batch=base.number, shards=n, price_shards=m,
                 last_slot=rows[self.keys[0]][1])
        return base

    def barrier(self, assembler: SlotAssembler, number: int) -> dict[str, Any]:
        """The ingest's own state as of cutting barrier batch `number`."""
        # The slot the barrier covers: the highest slot run so far (a resumed run that found
        # nothing new repeats the stored one, which the checkpoint table accepts).
        return {"assembler": assembler.snapshot(), "cursors": dict(self.cursors), "number": number,
                "last_slot": assembler.watermark.slot}

    async def persist(self, planned: Planned, metas: list[Any], results: list[Any]) -> None:
        """Queue the barrier's write (after its moments: the sink pump keeps order)."""
        cfg, extra = self.config, planned.extra
        if cfg.dsn is None or extra is None or not cfg.checkpoints:
            return
        ingest = orjson.dumps({"format": "oof-ingest", "number": planned.number,
                               "assembler": extra["assembler"].decode()})
        snapshots = {self.keys[0]: ingest}
        for k, meta in enumerate(metas):
            snapshots[checkpoint_id("prices", k, cfg)] = meta.snapshot
        for j, result in enumerate(results):
            snapshots[checkpoint_id("shard", j, cfg)] = result.snapshot
        candles = [c for meta in metas for c in (meta.candles or ())]
        await self.pump.put("checkpoint", f"{self.run_id}:{planned.number}",
                            extra["last_slot"], snapshots, candles, extra["cursors"])

"""`SlotAssembler`: the engine's input stage — dedup, canonical order, late/stale — without detection.

The pipeline must equal the in-process `core.engine.Engine` to the moment, so it must see
exactly the slot runs the engine would run: the same dedup keys and horizon, the same
views (tracked wallets mentioned in others' transactions included), the same canonical
order within a slot, the same treatment of late and stale input. Rather than restate those
rules here, this *is* the engine with its slot execution replaced by "hand the slot run
over": `_run_slot` records a `SlotRun` (plus the engine's own bookkeeping) and `_parse` also
keeps each transaction's main view and raw JSON for storage. Nothing else is overridden.

(Engine API wish, see the pipeline report: a public `SlotAssembler`/`Engine.runs()` split in
core, so this subclass does not depend on two private methods.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from actors.protocol import SlotRun
from core.engine import DEFAULT_DEDUP_SLOTS, Engine
from core.models import ParsedTransaction
from core.thresholds import Thresholds

__all__ = ["SlotAssembler"]


class SlotAssembler(Engine):
    """Offer inputs as to an `Engine`; take the slot runs it would have executed with `take_runs`."""

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        tracked: Iterable[str] | None = None,
        dedup_slots: int = DEFAULT_DEDUP_SLOTS,
    ) -> None:
        super().__init__(thresholds, shard_count=1, tracked=tracked, dedup_slots=dedup_slots)
        self.shards = []  # detection happens in the shard actors; the (empty) price book is never fed
        self.runs: list[SlotRun] = []
        self.parsed: list[tuple[ParsedTransaction, Mapping[str, Any]]] = []  # (main view, raw) for storage
        self.pending_views = 0

    def take_runs(self) -> list[SlotRun]:
        runs, self.runs, self.pending_views = self.runs, [], 0
        return runs

    def take_parsed(self) -> list[tuple[ParsedTransaction, Mapping[str, Any]]]:
        parsed, self.parsed = self.parsed, []
        return parsed

    @property
    def buffered_slot(self) -> int | None:
        """The slot held back until a later one arrives (or `flush`)."""
        return self._buf_slot

    # -- the two hooks ----------------------------------------------------------------------
    def _parse(self, raw: Mapping[str, Any]) -> list[ParsedTransaction]:
        views = super()._parse(raw)
        self.parsed.append((views[0], raw))
        return views

    def _run_slot(self, slot: int, block_time: int | None, views: list[ParsedTransaction]) -> list[Any]:
        # The engine's bookkeeping for a slot it ran (what `_offer` reads for late/stale input).
        self.stats.slots += 1
        self.stats.views += len(views)
        self.watermark.advance(slot, block_time)
        self._last_slot = max(self._last_slot, slot)
        self.runs.append(SlotRun(slot, block_time, views))
        self.pending_views += len(views)
        return []

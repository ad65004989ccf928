"""The values that cross actor boundaries, one batch of slots at a time.

Plain NamedTuples of core types (cheap to pickle, no behaviour). A *batch* is a run of
consecutive slot runs (`SlotRun`: one slot's views in the engine's canonical order); every
stage gets one call per batch, never one per transaction:

    ingest ──PriceInput──► prices[k] ──PricePart per shard──► shard[j] ──ShardResult──► ingest
                                     ──PriceMeta─────────────────────────────────────► ingest
                                                              shard[j] ──moments────► sink (ingest: a reference)

Slots inside a batch are addressed by their index `i` in `PriceInput.slots`; per-slot maps
are sparse (`dict[i, …]`) so empty slots cost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from actors import wire
from core.models import Moment, TradeEvent
from core.oracle import LegPrices, MintHistory, RefAnswer, SlotTicks

wire.register()  # compact pickling of what these values carry

__all__ = [
    "SlotRun",
    "PriceInput",
    "ShardInput",
    "PricePart",
    "PriceMeta",
    "ShardResult",
    "StaleGeneration",
    "LegKey",
]

LegKey = tuple[str, str, int]  # (signature, wallet, ix), as `SlotPricing.legs` keys them


class SlotRun(NamedTuple):
    """One slot as the engine runs it: its watermark and its views, canonical order."""

    slot: int
    block_time: int | None
    views: Sequence[Any]  # ParsedTransaction (or the engine's view of a bare TradeEvent)


class PriceInput(NamedTuple):
    """Everything every price actor needs for one batch (one object, shared by all of them)."""

    batch: int
    slots: tuple[tuple[int, int | None], ...]  # (slot, block_time) per slot index
    trades: dict[int, tuple[TradeEvent, ...]]  # slot index -> the slot's trades, canonical order
    dests: dict[int, tuple[int, ...]]  # slot index -> per trade: the shard of its wallet, -1 if untracked
    wants: dict[int, dict[int, frozenset[str]]]  # slot index -> shard -> mints it may ask the history of
    candidates: tuple[frozenset[str], ...]  # per shard: mints it may watch during the batch
    checkpoint: bool  # snapshot after this batch


class ShardInput(NamedTuple):
    batch: int
    slots: tuple[tuple[int, int | None], ...]  # every slot of the batch: each one advances the watermark
    views: dict[int, list[Any]]  # slot index -> this shard's views, canonical order
    checkpoint: bool


class PricePart(NamedTuple):
    """What one price actor tells one shard about one batch (only mints that actor owns)."""

    ticks: dict[int, list[tuple[int, SlotTicks]]]  # slot index -> [(position in the slot's pricing, ticks)]
    legs: dict[int, dict[LegKey, LegPrices]]
    answers: dict[int, list[RefAnswer]]  # keyed by `reference_key`, answered at that slot's `advance`
    histories: dict[int, dict[str, MintHistory]]  # as of the end of that slot's pricing


class PriceMeta(NamedTuple):
    """A price actor's report to the ingest for one batch."""

    batch: int
    index: int
    last_slot: int
    trades: int
    ticks: int
    busy_s: float
    candles: tuple[Any, ...] | None  # streams.storage.Candle: minutes touched since the last checkpoint
    snapshot: bytes | None  # at checkpoint batches


class ShardResult(NamedTuple):
    batch: int
    shard: int
    moments: list[Moment]  # the worker's upserts, coalesced per slot; the actor ships them to the sink apart
    last_slot: int
    views: int
    watched: frozenset[str] | None  # the shard's subscriptions at the end of the batch (None: unchanged)
    busy_s: float
    snapshot: bytes | None  # at checkpoint batches


class StaleGeneration(RuntimeError):
    """A batch reached an actor whose state is not the generation the batch was planned on
    (it restarted and has not been restored yet): the ingest must recover first."""

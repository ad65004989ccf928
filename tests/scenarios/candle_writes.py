"""What price actors write to `price_candles` for a tick stream, and what the store keeps.

Drives the real `actors.price_worker.PriceWorker` candle path (its tick intake, its flush at
checkpoints, its snapshot and restore) over ticks of a few mints, with the block-time
wobble of real chains (a tick of a minute arriving after the next minute's), so tests can
replay it with other checkpoint cadences and crashes and compare what the store ends with.
"""

from __future__ import annotations

import random
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from actors.price_worker import PriceWorker
from core.thresholds import Thresholds
from core.ticks import Tick, new_tick
from streams.storage import Candle

__all__ = ["tick_stream", "written", "stored", "truth"]

T0 = 1_700_000_040  # a minute boundary


def tick_stream(seed: int, n: int = 120, mints: int = 2) -> list[Tick]:
    """`n` ticks in slot order (several per slot at times), some slots' block times 70 or 150 s late."""
    rnd = random.Random(seed)
    out, slot, now, block_time = [], 1_000, T0, T0
    for _ in range(n):
        step = rnd.choice((0, 1, 1, 2))
        if step:
            slot += step
            now += rnd.choice((0, 1, 3, 7))
            late = rnd.random() < 0.06  # into the minute before, or one the actor already closed
            block_time = now - (rnd.choice((70, 150)) if late else 0)
        price = Decimal(rnd.randint(90, 110)) / 100
        out.append(new_tick(f"mint{rnd.randrange(mints)}", price, Decimal(rnd.randint(1, 500)) / 10, slot,
                            block_time, "w", f"sig{slot}"))
    return out


def _worker() -> PriceWorker:
    return PriceWorker(Thresholds(), 0, 1, 1)


def written(ticks: list[Tick], checkpoints: set[int], crash_at: int | None = None) -> list[Candle]:
    """The candles written, in order, when a checkpoint follows the ticks at `checkpoints` (indices;
    as in the pipeline, only after a slot's last tick) and the run ends with one; with `crash_at`,
    the actor dies before that tick and a new one, restored from the last checkpoint's snapshot,
    goes on from the tick after that checkpoint."""
    worker, out = _worker(), []
    snapshot, resume_from, i = worker.snapshot(), 0, 0
    while i < len(ticks):
        if i == crash_at:
            worker, crash_at = _worker(), None
            worker.restore(snapshot)
            i = resume_from
            continue
        worker._candle(SimpleNamespace(ticks=[ticks[i]]))  # the actor's own intake
        if i in checkpoints and (i + 1 == len(ticks) or ticks[i + 1].slot != ticks[i].slot):
            out.extend(worker._flush_candles())
            snapshot, resume_from = worker.snapshot(), i + 1
        i += 1
    out.extend(worker._flush_candles())
    return out


def stored(writes: list[Candle], store: dict[tuple[str, int], Candle] | None = None) -> dict[tuple[str, int], Any]:
    """The store after `writes`, one at a time, by `Candle.stored_with` (the SQL rule's mirror)."""
    store = dict(store or {})
    for c in writes:
        key = (c.mint, c.minute)
        store[key] = store[key].stored_with(c) if key in store else c
    return store


def truth(ticks: list[Tick]) -> dict[tuple[str, int], Candle]:
    """Every tick counted once: one candle per (mint, minute)."""
    out: dict[tuple[str, int], Candle] = {}
    for t in ticks:
        key = (t.mint, t.block_time // 60 * 60)
        one = Candle(t.mint, key[1], t.price_usd, t.price_usd, t.price_usd, t.price_usd, t.amount, 1, t.slot, t.slot)
        out[key] = out[key].merged(one) if key in out else one
    return out

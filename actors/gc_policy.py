"""How a process that holds a detection engine runs Python's cyclic garbage collector.

An engine keeps hundreds of thousands of small long-lived objects (positions, watches,
candles) and makes no reference cycles while it runs (`tests/unit/actors/test_gc_policy.py`
runs the demo recording, a snapshot round trip and a sharded synthetic stream with the
collector off and finds nothing to collect; a discarded engine is one cycle, once).
CPython's automatic collector still scans every new survivor at least once, and again
in each older generation: 10–25 % of the engine's time for garbage that never exists.

`GcPolicy` therefore, for the process that owns the engine (`oof replay`, `oof bench
engine`, the shard and price actors):

- `start()`: one full collection, everything alive frozen (CPython never scans the
  permanent generation), automatic collection off;
- `after(inputs)`, called after each batch: `gc.freeze()` again, which moves whatever
  the batch left alive into the permanent generation without scanning it (O(1));
- every `collect_every` inputs, or once `max_interval_s` of wall time has passed since the
  last one (a quiet live shard gets few inputs but keeps serving Ray calls), and on
  `collect()`: unfreeze, one full collection, freeze — so cycles made by anything else in
  the process (asyncio, Ray's worker) are reclaimed after a bounded amount of work and time;
- `stop()` unfreezes and turns automatic collection back on.

Objects freed by reference counting (nearly everything) are freed at once as always:
only garbage *cycles* wait for the next full collection.
"""

from __future__ import annotations

import gc
import time

__all__ = ["GcPolicy", "DEFAULT_COLLECT_EVERY", "DEFAULT_MAX_INTERVAL_S"]

DEFAULT_COLLECT_EVERY = 2_000_000  # inputs between full collections (~40 s of input at 50 k/s)
DEFAULT_MAX_INTERVAL_S = 60.0  # and at least this often (wall time: this is process housekeeping, not event time)


class GcPolicy:
    """Automatic collection off, survivors frozen per batch, a full collection now and then."""

    def __init__(self, collect_every: int = DEFAULT_COLLECT_EVERY,
                 max_interval_s: float = DEFAULT_MAX_INTERVAL_S) -> None:
        if collect_every < 1:
            raise ValueError("collect_every must be at least 1")
        if max_interval_s <= 0:
            raise ValueError("max_interval_s must be positive")
        self.collect_every = collect_every
        self.max_interval_s = max_interval_s
        self._last_collect = time.monotonic()
        self.since_collect = 0  # inputs since the last full collection
        self.collections = 0  # full collections run by this policy
        self.collected = 0  # unreachable objects they found
        self.collect_s = 0.0  # time they took
        self._was_enabled: bool | None = None  # None: not started

    @property
    def active(self) -> bool:
        return self._was_enabled is not None

    def start(self) -> GcPolicy:
        if self._was_enabled is None:
            self._was_enabled = gc.isenabled()
            gc.disable()
            self.collect()
        return self

    def after(self, inputs: int) -> None:
        """A batch of `inputs` is done: freeze what it left alive; collect fully when due."""
        if self._was_enabled is None:
            return
        self.since_collect += inputs
        if self.since_collect >= self.collect_every or time.monotonic() - self._last_collect >= self.max_interval_s:
            self.collect()
        else:
            gc.freeze()

    def collect(self) -> float:
        """One full collection of the whole heap, then everything alive frozen; returns its seconds."""
        started = time.perf_counter()
        gc.unfreeze()
        self.collected += gc.collect()
        gc.freeze()
        took = time.perf_counter() - started
        self.collections += 1
        self.collect_s += took
        self.since_collect = 0
        self._last_collect = time.monotonic()
        return took

    def stop(self) -> None:
        if self._was_enabled is None:
            return
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()
        self._was_enabled = None

"""Event time: the watermark clock, window arithmetic and timer queues.

Nothing here reads a clock. Time is what the stream says it is: the `Watermark` moves
forward with every transaction's `(slot, block_time)` and never back, and every expiry
check takes that watermark as an argument.

Two window shapes, two closing rules:
- a *look-ahead window* `(t, t + length]` (S2E, BHD, BAD_ROUTE, RUG confirmation) includes
  its end: a tick exactly at `t + length` counts, so the window closes only when the
  watermark has moved strictly past the end (`window_closed`);
- a *period* `[start, start + length)` (IDLE_YIELD days and 30-day periods) excludes its
  end, so it closes as soon as the watermark reaches the end (`period_closed`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Watermark",
    "TimerQueue",
    "in_window",
    "window_closed",
    "period_closed",
    "period_bounds",
    "minute_of",
]


@dataclass(slots=True)
class Watermark:
    """The event-time clock: the highest `(slot, block_time)` the stream has shown.

    `time` is unix seconds (0 until a transaction with a block time arrives); a
    transaction without a block time moves only the slot.
    """

    slot: int = 0
    time: int = 0

    def advance(self, slot: int, block_time: int | None) -> bool:
        """Move forward to `(slot, block_time)`; never backwards. True when anything moved."""
        moved = False
        if slot > self.slot:
            self.slot = slot
            moved = True
        if block_time is not None and block_time > self.time:
            self.time = block_time
            moved = True
        return moved

    def time_of(self, block_time: int | None) -> int:
        """The event time to use for something that happened at `block_time` (or now, if unknown)."""
        return self.time if block_time is None else block_time

    def to_list(self) -> list[int]:
        return [self.slot, self.time]

    @classmethod
    def from_list(cls, data: list[int]) -> Watermark:
        return cls(int(data[0]), int(data[1]))


def in_window(ts: int, start: int, end: int) -> bool:
    """`ts` lies in the look-ahead window `(start, end]`."""
    return start < ts <= end


def window_closed(end: int, wm_time: int) -> bool:
    """A window `(…, end]` is closed once the watermark is strictly past its end."""
    return wm_time > end


def period_closed(end: int, wm_time: int) -> bool:
    """A period `[…, end)` is closed once the watermark reaches its end."""
    return wm_time >= end


def period_bounds(origin: int, index: int, length: int) -> tuple[int, int]:
    """`[start, end)` of the `index`-th period of `length` seconds counted from `origin`."""
    start = origin + index * length
    return start, start + length


def minute_of(ts: int) -> int:
    """The candle a timestamp belongs to (unix minute)."""
    return ts // 60


class TimerQueue:
    """Due times → keys, popped in (due, insertion) order; pure and snapshot-able.

    Keys are strings (JSON-safe). Cancelling is lazy: owners ignore keys they no longer
    know. `pop_due(now, strict=True)` pops timers with `due < now` (look-ahead windows,
    which include their end); `strict=False` pops `due <= now` (periods).
    """

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: int, key: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, key))

    def next_due(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: int, *, strict: bool = True) -> list[tuple[int, str]]:
        heap = self._heap
        if not heap or heap[0][0] > now or (strict and heap[0][0] == now):
            return []
        out: list[tuple[int, str]] = []
        while heap and (heap[0][0] < now or (not strict and heap[0][0] == now)):
            due, _, key = heapq.heappop(heap)
            out.append((due, key))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self._seq, "heap": [list(item) for item in self._heap]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimerQueue:
        queue = cls()
        queue._seq = int(data["seq"])
        queue._heap = [(int(d), int(s), str(k)) for d, s, k in data["heap"]]
        return queue

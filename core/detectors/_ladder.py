"""`Ladder`: the crossed watches of one mint, grouped by their current extreme.

S2E and BHD keep, per mint, the watches that already crossed their thresholds, each with
its extreme so far (S2E's peak, BHD's trough). A tick beyond some of those extremes moves
every one of them to the tick's price at once, so watches keep meeting in the same
extremes: grouping them by extreme (`keys` ascending, `groups` the watch ids of each)
turns the per-watch heap pop and push of every deepening into one list splice per tick.
Keys are found by bisection, never by hashing a Decimal. Watch ids may outlive their
watch (a closed window); owners skip unknown ids and `compact` drops them in bulk.
"""

from __future__ import annotations

import bisect
from collections.abc import Container
from decimal import Decimal

__all__ = ["Ladder"]


class Ladder:
    __slots__ = ("keys", "groups", "size")

    def __init__(self) -> None:
        self.keys: list[Decimal] = []  # ascending, distinct
        self.groups: list[list[str]] = []  # the watch ids at each key
        self.size = 0  # ids held (closed ones included until `compact`)

    def put(self, key: Decimal, wids: list[str]) -> None:
        """Place watch ids at `key` (joining the group already there, if any)."""
        keys = self.keys
        i = bisect.bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            self.groups[i].extend(wids)
        else:
            keys.insert(i, key)
            self.groups.insert(i, wids)
        self.size += len(wids)

    def take_below(self, price: Decimal) -> list[tuple[Decimal, list[str]]]:
        """Take out the groups whose key is < `price` (a new high beats their peaks)."""
        cut = bisect.bisect_left(self.keys, price)
        return self._take(0, cut)

    def take_above(self, price: Decimal) -> list[tuple[Decimal, list[str]]]:
        """Take out the groups whose key is > `price` (a new low undercuts their troughs)."""
        cut = bisect.bisect_right(self.keys, price)
        return self._take(cut, len(self.keys))

    def _take(self, lo: int, hi: int) -> list[tuple[Decimal, list[str]]]:
        if lo >= hi:
            return []
        keys, groups = self.keys, self.groups
        out = list(zip(keys[lo:hi], groups[lo:hi]))
        del keys[lo:hi]
        del groups[lo:hi]
        for _, wids in out:
            self.size -= len(wids)
        return out

    def compact(self, alive: Container[str]) -> None:
        """Drop the ids no longer in `alive` (and the groups they leave empty)."""
        keys: list[Decimal] = []
        groups: list[list[str]] = []
        size = 0
        for key, wids in zip(self.keys, self.groups):
            kept = [w for w in wids if w in alive]
            if kept:
                keys.append(key)
                groups.append(kept)
                size += len(kept)
        self.keys, self.groups, self.size = keys, groups, size

    def entries(self) -> list[tuple[Decimal, str]]:
        """(key, watch id) for every id held, keys ascending (checkpoints)."""
        return [(key, wid) for key, wids in zip(self.keys, self.groups) for wid in wids]

    @staticmethod
    def of(entries: list[tuple[Decimal, str]]) -> Ladder:
        ladder = Ladder()
        for key, wid in sorted(entries, key=lambda e: e[0]):  # stable: ids keep their order within a key
            ladder.put(key, [wid])
        return ladder

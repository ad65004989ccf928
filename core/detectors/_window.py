"""What S2E and BHD share: a watch per priced trade over a look-ahead window.

Both keep, per mint, a heap of watches waiting to cross (`pending`, keyed by the price
that would cross) and a `Ladder` of the crossed ones by their extreme (`crossed`), and
both emit a watch's moment through `ShardContext.deferred`, so it is built once per slot
or per coalesced batch (`materialize`) from the watch's state at its last emission.
"""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any, Final

from core.detectors._ladder import Ladder
from core.detectors.base import ZERO, Detector, ShardContext, decimal_text
from core.models import Moment, MomentStatus, moment_id

__all__ = ["WindowWatch", "WindowDetector"]

_COMPACT_SLACK: Final = 16


class WindowWatch:
    """A watch's identity, and what its moments cache once computed."""

    __slots__ = ("wid", "wallet", "mint", "sig", "mid", "texts")

    def __init__(self, wid: str, wallet: str, mint: str, sig: str) -> None:
        self.wid, self.wallet, self.mint, self.sig = wid, wallet, mint, sig
        self.mid: str | None = None  # moment id, computed at the first emission
        self.texts: tuple[str, str] | None = None  # decimal_text of the fixed inputs, at the first emission


class WindowDetector(Detector):
    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        self.pending: dict[str, list[tuple[Decimal, int, str]]] = {}  # mint -> heap (crossing key, seq, wid)
        self.crossed: dict[str, Ladder] = {}  # mint -> crossed watches by their extreme
        self._memo: tuple[Decimal, str] = (ZERO, "0")  # decimal_text of the last extreme (one tick: many watches)

    def _moment(self, w: Any, status: MomentStatus, updated_at: int, state: str) -> Moment:
        raise NotImplementedError

    def _defer(self, w: WindowWatch, status: MomentStatus, updated_at: int, state: str) -> None:
        """Emit w's moment: built once per slot or batch (`ShardContext.deferred`), last state wins."""
        mid = w.mid
        if mid is None:
            mid = w.mid = moment_id(self.kind, w.wallet, w.mint, w.sig)
        self.ctx.deferred[mid] = (self, w, status, updated_at, state)

    def materialize(self, watch: Any, status: MomentStatus, updated_at: int, state: str) -> Moment:
        return self._moment(watch, status, updated_at, state)

    def _text(self, value: Decimal) -> str:
        memo = self._memo
        if value is memo[0]:
            return memo[1]
        text = decimal_text(value)
        self._memo = (value, text)
        return text

    def _compact(self, mint: str, live: int, alive: dict[str, Any]) -> None:
        """Drop the entries of closed windows once they outnumber the mint's live watches."""
        heap = self.pending.get(mint)
        if heap and len(heap) > 2 * live + _COMPACT_SLACK:
            kept = [i for i in heap if i[2] in alive]
            heapq.heapify(kept)
            self.pending[mint] = kept
        ladder = self.crossed.get(mint)
        if ladder is not None and ladder.size > 2 * live + _COMPACT_SLACK:
            ladder.compact(alive)

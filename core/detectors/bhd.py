"""BHD — bag-holder drawdown: the price fell well below where the wallet bought, while it held."""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any, Final

from core.detectors._ladder import Ladder
from core.detectors._window import WindowDetector, WindowWatch
from core.detectors.base import (
    ONE,
    ZERO,
    Leg,
    LegRole,
    ShardContext,
    clamp01,
    decimal_text,
    explain_text,
    make_moment,
)
from core.models import Moment, MomentKind, MomentStatus, moment_id
from core.oracle import SlotTicks
from core.windows import TimerQueue, Watermark

__all__ = ["BagHolderDrawdown"]

_LATE: Final = Decimal("1.000000000001")
_BUY: Final = LegRole.BUY
_OPEN: Final = MomentStatus.OPEN
_FINAL: Final = MomentStatus.FINAL
_BHD: Final = MomentKind.BHD
heappush: Final = heapq.heappush
heappop: Final = heapq.heappop
RULE: Final = "pct = (p_low - p_entry) / p_entry; usd = held * (p_entry - p_low)"


class _Watch(WindowWatch):
    __slots__ = ("slot", "t", "end", "lot", "q", "p_entry", "crossed",
                 "trough", "trough_time", "held", "detected_at")

    def __init__(self, wid: str, wallet: str, mint: str, sig: str, slot: int, t: int, end: int, lot: str,
                 q: Decimal, p_entry: Decimal) -> None:
        super().__init__(wid, wallet, mint, sig)
        self.slot = slot
        self.t, self.end, self.lot, self.q, self.p_entry = t, end, lot, q, p_entry
        self.crossed = False
        self.trough: Decimal = ZERO
        self.trough_time = 0
        self.held: Decimal = ZERO  # part of the lot held at the trough
        self.detected_at = 0
        self.mid: str | None = None

    def to_list(self) -> list[Any]:
        return [self.wid, self.wallet, self.mint, self.sig, self.slot, self.t, self.end, self.lot, str(self.q),
                str(self.p_entry), self.crossed, str(self.trough), self.trough_time, str(self.held), self.detected_at]

    @staticmethod
    def from_list(d: list[Any]) -> _Watch:
        (wid, wallet, mint, sig, slot, t, end, lot, q, p_entry, crossed, trough, trough_time, held,
         detected_at) = d
        w = _Watch(wid, wallet, mint, sig, slot, t, end, lot, Decimal(q), Decimal(p_entry))
        w.crossed, w.trough, w.trough_time = crossed, Decimal(trough), trough_time
        w.held, w.detected_at = Decimal(held), detected_at
        return w


class BagHolderDrawdown(WindowDetector):
    """BHD — a BUY of `q` at `p_entry` (USD) at time `t`, creating lot L.

    p_low = lowest tick of the mint in `(t, t + bhd_window_s]` at which part of L was
            still held (FIFO: later sells consume L before newer lots)
    held  = the part of L still held at that trough
    pct   = (p_low - p_entry) / p_entry
    usd   = held * (p_entry - p_low)
    emit  pct <= bhd_max_pct and usd >= bhd_min_usd: `open` at the first tick that crosses,
          updated in place when a deeper trough also meets both thresholds, `final` once
          the watermark is past `t + bhd_window_s`.
    severity = min(1, -pct)

    Lot L sold entirely before any crossing trough → no moment. A deeper trough reached
    after most of L was sold, whose `usd` no longer meets the threshold, does not replace
    the trough already reported (the trader is not blamed for what they no longer held).
    A buy worth less than `bhd_min_usd` can never qualify and is not watched.
    """

    kind = MomentKind.BHD
    roles = frozenset({LegRole.BUY})

    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        th = self.th
        self._factor = 1 + th.bhd_max_pct
        self._max_pct = th.bhd_max_pct
        self._min_usd = th.bhd_min_usd
        self._window = th.bhd_window_s
        self._thresholds = explain_text(
            {"max_pct": th.bhd_max_pct, "min_usd": th.bhd_min_usd, "window_s": th.bhd_window_s})
        self.watches: dict[str, _Watch] = {}
        self.live: dict[str, int] = {}
        self.timers = TimerQueue()
        self.seq = 0

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(-pct)

    def _p_cross(self, p_entry: Decimal, held: Decimal) -> Decimal:
        """Highest price at which `held` units bought at `p_entry` would cross (≤ 0: never)."""
        return min(p_entry * self._factor, p_entry - self._min_usd / held)

    def on_trade(self, leg: Leg) -> list[Moment]:
        price, lot = leg.price_usd, leg.lot_key
        if price is None or leg.role is not _BUY or price <= ZERO or lot is None:
            return []
        if price * leg.amount < self._min_usd:  # worth less than min_usd: can never lose that much (a cheap
            return []  # first test; exactly what p_cross <= 0 below decides for such a buy)
        by_pct = price * self._factor
        by_usd = price - self._min_usd / leg.amount
        p_cross = by_usd if by_usd < by_pct else by_pct  # self._p_cross(price, leg.amount)
        if p_cross <= ZERO:
            return []
        mint = leg.mint
        wid = f"{leg.wallet}|{mint}|{leg.signature}"
        watches = self.watches
        if wid in watches:
            return []
        end = leg.time + self._window
        watches[wid] = _Watch(wid, leg.wallet, mint, leg.signature, leg.slot, leg.time, end, lot, leg.amount, price)
        self.seq = seq = self.seq + 1
        item = (-(p_cross * _LATE), seq, wid)
        heap = self.pending.get(mint)
        if heap is None:
            self.pending[mint] = [item]
        else:
            heappush(heap, item)
        self.timers.push(end, wid)
        live = self.live
        count = live.get(mint, 0)
        live[mint] = count + 1
        if count == 0:
            self.ctx.watch(mint)
        return []

    def on_tick(self, ticks: SlotTicks) -> list[Moment]:
        mint, _, now, _, _, low, _ = ticks  # SlotTicks (NamedTuple attribute reads are slow in 3.11)
        positions = self.ctx.positions
        ladder = self.crossed.get(mint)
        deeper: list[str] = []  # crossed watches whose trough is now `low`
        if ladder is not None and ladder.keys and ladder.keys[-1] > low:  # troughs this slot undercuts
            watches = self.watches
            max_pct, min_usd = self._max_pct, self._min_usd
            for trough, wids in ladder.take_above(low):
                kept: list[str] = []
                for wid in wids:
                    w = watches.get(wid)
                    if w is None:
                        continue  # window closed
                    held = positions.remaining(w.wallet, mint, w.lot)
                    if not held:
                        continue  # nothing left of the lot: the reported trough stands
                    drop = w.p_entry - low
                    if -drop / w.p_entry <= max_pct and held * drop >= min_usd:  # self._meets(w.p_entry, low, held)
                        w.trough, w.trough_time, w.held = low, now, held
                        self._defer(w, _OPEN, now, "deepened")
                        deeper.append(wid)
                    else:
                        kept.append(wid)  # too little held for this low to count: its trough stands
                if kept:
                    ladder.put(trough, kept)
        heap = self.pending.get(mint)
        neg_low = -low  # pending is a max-heap on the crossing price: keys are negated
        if heap and heap[0][0] <= neg_low:
            retry = []
            watches = self.watches
            while heap and heap[0][0] <= neg_low:
                item = heappop(heap)
                w = watches.get(item[2])
                if w is None:
                    continue
                if now <= w.t:
                    retry.append(item)
                    continue
                held = positions.remaining(w.wallet, mint, w.lot)
                if not held:
                    self._drop(w, compact=False)  # sold before any crossing trough: can never qualify
                    continue
                if self._meets(w.p_entry, low, held):
                    w.crossed, w.trough, w.trough_time, w.held, w.detected_at = True, low, now, held, now
                    deeper.append(w.wid)
                    self._defer(w, _OPEN, now, "crossed")
                    continue
                p_cross = self._p_cross(w.p_entry, held)  # less is held now: a lower price is needed
                if p_cross <= 0:
                    self._drop(w, compact=False)
                    continue
                retry.append((-(p_cross * _LATE), item[1], item[2]))
            for item in retry:
                heappush(heap, item)
        if deeper:
            if ladder is None:
                ladder = self.crossed[mint] = Ladder()
            ladder.put(low, deeper)
        return []  # S2E/BHD moments are deferred (`_defer`)

    def _meets(self, p_entry: Decimal, low: Decimal, held: Decimal) -> bool:
        drop = p_entry - low
        return -drop / p_entry <= self._max_pct and held * drop >= self._min_usd

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        heap = self.timers._heap  # peek without a call: this runs every slot
        if not heap or heap[0][0] >= wm.time:
            return []
        due = self.timers.pop_due(wm.time)
        if not due:
            return []
        for end, wid in due:
            w = self.watches.get(wid)
            if w is None:
                continue
            if w.crossed:
                self._defer(w, _FINAL, end, "final")
            self._drop(w)
        return []  # S2E/BHD moments are deferred (`_defer`)

    def _drop(self, w: _Watch, *, compact: bool = True) -> None:
        del self.watches[w.wid]
        mint = w.mint
        live = self.live[mint] - 1
        if live:
            self.live[mint] = live
            if compact:
                self._compact(mint, live, self.watches)
            return
        del self.live[mint]
        self.pending.pop(mint, None)
        self.crossed.pop(mint, None)
        self.ctx.unwatch(mint)

    def _moment(self, w: _Watch, status: MomentStatus, updated_at: int, state: str) -> Moment:
        mid = w.mid
        if mid is None:
            mid = w.mid = moment_id(_BHD, w.wallet, w.mint, w.sig)
        texts = w.texts
        if texts is None:
            texts = w.texts = (decimal_text(w.q), decimal_text(w.p_entry))
        q_text, p_entry_text = texts
        p_entry, trough, held = w.p_entry, w.trough, w.held
        drop = p_entry - trough
        pct = -drop / p_entry
        neg = -pct
        return make_moment(
            mid, _BHD, w.wallet, w.mint, w.sig, w.slot, pct, held * drop,
            ZERO if neg < ZERO else ONE if neg > ONE else neg,  # severity = min(1, -pct)
            w.t, w.end, status, w.detected_at, updated_at, RULE,
            {"q": q_text, "p_entry": p_entry_text, "p_low": self._text(trough), "held": decimal_text(held),
             "t_entry": w.t, "t_low": w.trough_time, "lot": w.lot},
            self._thresholds, state,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "watches": [w.to_list() for w in self.watches.values()],
            "pending": {m: [[str(p), s, wid] for p, s, wid in h] for m, h in self.pending.items()},
            "crossed": {m: [[str(-p), 0, wid] for p, wid in ladder.entries()]  # -trough: the heap format
                        for m, ladder in self.crossed.items()},
            "live": self.live,
            "timers": self.timers.to_dict(),
            "seq": self.seq,
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.watches = {w[0]: _Watch.from_list(w) for w in d["watches"]}
        self.pending = {m: [(Decimal(p), s, wid) for p, s, wid in h] for m, h in d["pending"].items()}
        self.crossed = {m: Ladder.of([(-Decimal(p), wid) for p, _, wid in h]) for m, h in d["crossed"].items()}
        self.live = dict(d["live"])
        self.timers = TimerQueue.from_dict(d["timers"])
        self.seq = d["seq"]

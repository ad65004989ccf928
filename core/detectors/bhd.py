"""BHD — bag-holder drawdown: the price fell well below where the wallet bought, while it held."""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any

from core.detectors.base import ZERO, Detector, Leg, LegRole, ShardContext, build_moment, clamp01, explain_text
from core.models import Moment, MomentKind, MomentStatus, moment_id
from core.oracle import SlotTicks
from core.windows import TimerQueue, Watermark

__all__ = ["BagHolderDrawdown"]

_LATE = Decimal("1.000000000001")
RULE = "pct = (p_low - p_entry) / p_entry; usd = held * (p_entry - p_low)"


class _Watch:
    __slots__ = ("wid", "wallet", "mint", "sig", "slot", "t", "end", "lot", "q", "p_entry", "crossed",
                 "trough", "trough_time", "held", "detected_at", "mid")

    def __init__(self, wid: str, leg: Leg, end: int) -> None:
        self.wid, self.wallet, self.mint, self.sig, self.slot = wid, leg.wallet, leg.mint, leg.signature, leg.slot
        self.t, self.end, self.lot, self.q, self.p_entry = leg.time, end, leg.lot_key, leg.amount, leg.price_usd
        self.crossed = False
        self.trough: Decimal = ZERO
        self.trough_time = 0
        self.held: Decimal = ZERO  # part of the lot held at the trough
        self.detected_at = 0
        self.mid: str | None = None

    def to_list(self) -> list[Any]:
        return [self.wid, self.wallet, self.mint, self.sig, self.slot, self.t, self.end, self.lot, str(self.q),
                str(self.p_entry), self.crossed, str(self.trough), self.trough_time, str(self.held), self.detected_at]

    @classmethod
    def from_list(cls, d: list[Any]) -> _Watch:
        w = cls.__new__(cls)
        (w.wid, w.wallet, w.mint, w.sig, w.slot, w.t, w.end, w.lot, q, p_entry, w.crossed, trough,
         w.trough_time, held, w.detected_at) = d
        w.q, w.p_entry, w.trough, w.held = Decimal(q), Decimal(p_entry), Decimal(trough), Decimal(held)
        w.mid = None
        return w


class BagHolderDrawdown(Detector):
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
        self._thresholds = explain_text(
            {"max_pct": th.bhd_max_pct, "min_usd": th.bhd_min_usd, "window_s": th.bhd_window_s})
        self.watches: dict[str, _Watch] = {}
        self.pending: dict[str, list[tuple[Decimal, int, str]]] = {}  # mint -> heap (-p_cross, seq, wid)
        self.crossed: dict[str, list[tuple[Decimal, int, str]]] = {}  # mint -> heap (-trough, seq, wid)
        self.live: dict[str, int] = {}
        self.timers = TimerQueue()
        self.seq = 0

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(-pct)

    def _p_cross(self, p_entry: Decimal, held: Decimal) -> Decimal:
        """Highest price at which `held` units bought at `p_entry` would cross (≤ 0: never)."""
        return min(p_entry * self._factor, p_entry - self.th.bhd_min_usd / held)

    def on_trade(self, leg: Leg) -> list[Moment]:
        price = leg.price_usd
        if leg.role is not LegRole.BUY or price is None or price <= 0 or leg.lot_key is None:
            return []
        p_cross = self._p_cross(price, leg.amount)
        if p_cross <= 0:
            return []
        wid = f"{leg.wallet}|{leg.mint}|{leg.signature}"
        if wid in self.watches:
            return []
        end = leg.time + self.th.bhd_window_s
        self.watches[wid] = _Watch(wid, leg, end)
        mint = leg.mint
        self.seq += 1
        heapq.heappush(self.pending.setdefault(mint, []), (-(p_cross * _LATE), self.seq, wid))
        self.timers.push(end, wid)
        count = self.live.get(mint, 0)
        self.live[mint] = count + 1
        if count == 0:
            self.ctx.watch(mint)
        return []

    def on_tick(self, ticks: SlotTicks) -> list[Moment]:
        mint, low, now = ticks.mint, ticks.low, ticks.block_time
        out: list[Moment] = []
        positions = self.ctx.positions
        crossed = self.crossed.get(mint)
        if crossed and -crossed[0][0] > low:  # crossed watches whose trough this slot undercuts
            back = []
            while crossed and -crossed[0][0] > low:
                item = heapq.heappop(crossed)
                w = self.watches.get(item[2])
                if w is None:
                    continue  # window closed
                held = positions.remaining(w.wallet, mint, w.lot)
                if held == 0:
                    continue  # nothing left of the lot: the reported trough stands
                if self._meets(w.p_entry, low, held):
                    w.trough, w.trough_time, w.held = low, now, held
                    out.append(self._moment(w, MomentStatus.OPEN, now, "deepened"))
                    back.append((-low, item[1], item[2]))
                else:
                    back.append(item)
            for item in back:
                heapq.heappush(crossed, item)
        heap = self.pending.get(mint)
        if heap and -heap[0][0] >= low:
            retry = []
            while heap and -heap[0][0] >= low:
                item = heapq.heappop(heap)
                w = self.watches.get(item[2])
                if w is None:
                    continue
                if now <= w.t:
                    retry.append(item)
                    continue
                held = positions.remaining(w.wallet, mint, w.lot)
                if held == 0:
                    self._drop(w, compact=False)  # sold before any crossing trough: can never qualify
                    continue
                if self._meets(w.p_entry, low, held):
                    w.crossed, w.trough, w.trough_time, w.held, w.detected_at = True, low, now, held, now
                    heapq.heappush(self.crossed.setdefault(mint, []), (-low, item[1], w.wid))
                    out.append(self._moment(w, MomentStatus.OPEN, now, "crossed"))
                    continue
                p_cross = self._p_cross(w.p_entry, held)  # less is held now: a lower price is needed
                if p_cross <= 0:
                    self._drop(w, compact=False)
                    continue
                retry.append((-(p_cross * _LATE), item[1], item[2]))
            for item in retry:
                heapq.heappush(heap, item)
        return out

    def _meets(self, p_entry: Decimal, low: Decimal, held: Decimal) -> bool:
        drop = p_entry - low
        return -drop / p_entry <= self.th.bhd_max_pct and held * drop >= self.th.bhd_min_usd

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        due = self.timers.pop_due(wm.time)
        if not due:
            return []
        out: list[Moment] = []
        for end, wid in due:
            w = self.watches.get(wid)
            if w is None:
                continue
            if w.crossed:
                out.append(self._moment(w, MomentStatus.FINAL, end, "final"))
            self._drop(w)
        return out

    def _drop(self, w: _Watch, *, compact: bool = True) -> None:
        del self.watches[w.wid]
        mint = w.mint
        live = self.live[mint] - 1
        if live:
            self.live[mint] = live
            if compact:  # drop entries of closed windows
                for heaps in (self.pending, self.crossed):
                    heap = heaps.get(mint)
                    if heap and len(heap) > 2 * live + 16:
                        heaps[mint] = [i for i in heap if i[2] in self.watches]
                        heapq.heapify(heaps[mint])
            return
        del self.live[mint]
        self.pending.pop(mint, None)
        self.crossed.pop(mint, None)
        self.ctx.unwatch(mint)

    def _moment(self, w: _Watch, status: MomentStatus, updated_at: int, state: str) -> Moment:
        if w.mid is None:
            w.mid = moment_id(MomentKind.BHD, w.wallet, w.mint, w.sig)
        drop = w.p_entry - w.trough
        pct = -drop / w.p_entry
        usd = w.held * drop
        return build_moment(
            MomentKind.BHD, mid=w.mid, wallet=w.wallet, mint=w.mint, sig_ref=w.sig, slot_ref=w.slot, pct=pct,
            usd=usd, severity=self.severity(pct, usd), window=(w.t, w.end), status=status,
            detected_at=w.detected_at, updated_at=updated_at, rule=RULE,
            inputs={"q": w.q, "p_entry": w.p_entry, "p_low": w.trough, "held": w.held, "t_entry": w.t,
                    "t_low": w.trough_time, "lot": w.lot},
            thresholds=self._thresholds, state=state,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "watches": [w.to_list() for w in self.watches.values()],
            "pending": {m: [[str(p), s, wid] for p, s, wid in h] for m, h in self.pending.items()},
            "crossed": {m: [[str(p), s, wid] for p, s, wid in h] for m, h in self.crossed.items()},
            "live": self.live,
            "timers": self.timers.to_dict(),
            "seq": self.seq,
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.watches = {w[0]: _Watch.from_list(w) for w in d["watches"]}
        self.pending = {m: [(Decimal(p), s, wid) for p, s, wid in h] for m, h in d["pending"].items()}
        self.crossed = {m: [(Decimal(p), s, wid) for p, s, wid in h] for m, h in d["crossed"].items()}
        self.live = dict(d["live"])
        self.timers = TimerQueue.from_dict(d["timers"])
        self.seq = d["seq"]

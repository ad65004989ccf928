"""S2E — sold too early: the price rose well above where the wallet sold."""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any

from core.detectors.base import ZERO, Detector, Leg, LegRole, ShardContext, build_moment, clamp01, explain_text
from core.models import Moment, MomentKind, MomentStatus, moment_id
from core.oracle import SlotTicks
from core.windows import TimerQueue, Watermark

__all__ = ["SoldTooEarly"]

_EARLY = Decimal("0.999999999999")
RULE = "pct = (p_peak - p_exit) / p_exit; usd = q * (p_peak - p_exit)"


class _Watch:
    __slots__ = ("wid", "wallet", "mint", "sig", "slot", "t", "end", "q", "p_exit", "p_cross",
                 "crossed", "peak", "peak_time", "detected_at", "mid")

    def __init__(self, wid: str, leg: Leg, end: int, p_cross: Decimal) -> None:
        self.wid, self.wallet, self.mint, self.sig, self.slot = wid, leg.wallet, leg.mint, leg.signature, leg.slot
        self.t, self.end, self.q, self.p_exit, self.p_cross = leg.time, end, leg.amount, leg.price_usd, p_cross
        self.crossed = False
        self.peak: Decimal = ZERO
        self.peak_time = 0
        self.detected_at = 0
        self.mid: str | None = None  # moment id, computed at the first emission

    def to_list(self) -> list[Any]:
        return [self.wid, self.wallet, self.mint, self.sig, self.slot, self.t, self.end, str(self.q),
                str(self.p_exit), str(self.p_cross), self.crossed, str(self.peak), self.peak_time, self.detected_at]

    @classmethod
    def from_list(cls, d: list[Any]) -> _Watch:
        w = cls.__new__(cls)
        (w.wid, w.wallet, w.mint, w.sig, w.slot, w.t, w.end, q, p_exit, p_cross, w.crossed, peak,
         w.peak_time, w.detected_at) = d
        w.q, w.p_exit, w.p_cross, w.peak = Decimal(q), Decimal(p_exit), Decimal(p_cross), Decimal(peak)
        w.mid = None
        return w


class SoldTooEarly(Detector):
    """S2E — a SELL of `q` at `p_exit` (USD) at time `t`.

    p_peak = highest tick of the mint in `(t, t + s2e_window_s]`
    pct    = (p_peak - p_exit) / p_exit
    usd    = q * (p_peak - p_exit)
    emit   pct >= s2e_min_pct and usd >= s2e_min_usd: `open` at the first tick that
           crosses both, updated in place when the peak rises, `final` once the watermark
           is past `t + s2e_window_s` (a window that never crossed emits nothing).
    severity = min(1, pct / 2)

    Watches that have not crossed wait in a per-mint heap keyed by the price that would
    cross both thresholds, crossed ones in a heap keyed by their peak, so a tick costs
    O(1) unless it crosses or raises something.
    """

    kind = MomentKind.S2E
    roles = frozenset({LegRole.SELL})

    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        th = self.th
        self._pct_factor = 1 + th.s2e_min_pct
        self._thresholds = explain_text(
            {"min_pct": th.s2e_min_pct, "min_usd": th.s2e_min_usd, "window_s": th.s2e_window_s})
        self.watches: dict[str, _Watch] = {}
        self.pending: dict[str, list[tuple[Decimal, int, str]]] = {}  # mint -> heap (p_cross, seq, wid)
        self.crossed: dict[str, list[tuple[Decimal, int, str]]] = {}  # mint -> heap (peak, seq, wid)
        self.live: dict[str, int] = {}  # mint -> watches
        self.timers = TimerQueue()
        self.seq = 0

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(pct / 2)

    def on_trade(self, leg: Leg) -> list[Moment]:
        price = leg.price_usd
        if leg.role is not LegRole.SELL or price is None or price <= 0:
            return []
        wid = f"{leg.wallet}|{leg.mint}|{leg.signature}"
        if wid in self.watches:
            return []
        th = self.th
        # slightly below the exact crossing price: rounding may only make us look too early
        p_cross = max(price * self._pct_factor, price + th.s2e_min_usd / leg.amount) * _EARLY
        end = leg.time + th.s2e_window_s
        self.watches[wid] = _Watch(wid, leg, end, p_cross)
        mint = leg.mint
        self.seq += 1
        heapq.heappush(self.pending.setdefault(mint, []), (p_cross, self.seq, wid))
        self.timers.push(end, wid)
        count = self.live.get(mint, 0)
        self.live[mint] = count + 1
        if count == 0:
            self.ctx.watch(mint)
        return []

    def on_tick(self, ticks: SlotTicks) -> list[Moment]:
        mint, high, now = ticks.mint, ticks.high, ticks.block_time
        out: list[Moment] = []
        crossed = self.crossed.get(mint)
        if crossed and crossed[0][0] < high:  # crossed watches whose peak this slot beats
            raised = []
            while crossed and crossed[0][0] < high:
                peak, seq, wid = heapq.heappop(crossed)
                w = self.watches.get(wid)
                if w is None:
                    continue  # window closed
                w.peak, w.peak_time = high, now
                out.append(self._moment(w, MomentStatus.OPEN, now, "deepened"))
                raised.append((high, seq, wid))
            for item in raised:
                heapq.heappush(crossed, item)
        heap = self.pending.get(mint)
        if heap and heap[0][0] <= high:
            th = self.th
            retry = []
            while heap and heap[0][0] <= high:
                item = heapq.heappop(heap)
                w = self.watches.get(item[2])
                if w is None:
                    continue  # window closed
                gain = high - w.p_exit
                if now <= w.t or gain / w.p_exit < th.s2e_min_pct or w.q * gain < th.s2e_min_usd:
                    retry.append(item)
                    continue
                w.crossed, w.peak, w.peak_time, w.detected_at = True, high, now, now
                heapq.heappush(self.crossed.setdefault(mint, []), (high, item[1], w.wid))
                out.append(self._moment(w, MomentStatus.OPEN, now, "crossed"))
            for item in retry:
                heapq.heappush(heap, item)
        return out

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        due = self.timers.pop_due(wm.time)
        if not due:
            return []
        out: list[Moment] = []
        for end, wid in due:
            w = self.watches.pop(wid, None)
            if w is None:
                continue
            mint = w.mint
            if w.crossed:
                out.append(self._moment(w, MomentStatus.FINAL, end, "final"))
            self._release(mint)
        return out

    def _release(self, mint: str) -> None:
        live = self.live[mint] - 1
        if live:
            self.live[mint] = live
            for heaps in (self.pending, self.crossed):  # drop entries of closed windows
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
            w.mid = moment_id(MomentKind.S2E, w.wallet, w.mint, w.sig)
        gain = w.peak - w.p_exit
        pct = gain / w.p_exit
        usd = w.q * gain
        return build_moment(
            MomentKind.S2E, mid=w.mid, wallet=w.wallet, mint=w.mint, sig_ref=w.sig, slot_ref=w.slot, pct=pct,
            usd=usd, severity=self.severity(pct, usd), window=(w.t, w.end), status=status,
            detected_at=w.detected_at, updated_at=updated_at, rule=RULE,
            inputs={"q": w.q, "p_exit": w.p_exit, "p_peak": w.peak, "t_exit": w.t, "t_peak": w.peak_time},
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

"""S2E — sold too early: the price rose well above where the wallet sold."""

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

__all__ = ["SoldTooEarly"]

_EARLY: Final = Decimal("0.999999999999")
_SELL: Final = LegRole.SELL
_OPEN: Final = MomentStatus.OPEN
_FINAL: Final = MomentStatus.FINAL
_S2E: Final = MomentKind.S2E
heappush: Final = heapq.heappush
heappop: Final = heapq.heappop
RULE: Final = "pct = (p_peak - p_exit) / p_exit; usd = q * (p_peak - p_exit)"


class _Watch(WindowWatch):
    __slots__ = ("slot", "t", "end", "q", "p_exit", "p_cross",
                 "crossed", "peak", "peak_time", "detected_at")

    def __init__(self, wid: str, wallet: str, mint: str, sig: str, slot: int, t: int, end: int, q: Decimal,
                 p_exit: Decimal, p_cross: Decimal) -> None:
        super().__init__(wid, wallet, mint, sig)
        self.slot = slot
        self.t, self.end, self.q, self.p_exit, self.p_cross = t, end, q, p_exit, p_cross
        self.crossed = False
        self.peak: Decimal = ZERO
        self.peak_time = 0
        self.detected_at = 0

    def to_list(self) -> list[Any]:
        return [self.wid, self.wallet, self.mint, self.sig, self.slot, self.t, self.end, str(self.q),
                str(self.p_exit), str(self.p_cross), self.crossed, str(self.peak), self.peak_time, self.detected_at]

    @staticmethod
    def from_list(d: list[Any]) -> _Watch:
        (wid, wallet, mint, sig, slot, t, end, q, p_exit, p_cross, crossed, peak, peak_time, detected_at) = d
        w = _Watch(wid, wallet, mint, sig, slot, t, end, Decimal(q), Decimal(p_exit), Decimal(p_cross))
        w.crossed, w.peak, w.peak_time, w.detected_at = crossed, Decimal(peak), peak_time, detected_at
        return w


class SoldTooEarly(WindowDetector):
    """S2E — a SELL of `q` at `p_exit` (USD) at time `t`.

    p_peak = highest tick of the mint in `(t, t + s2e_window_s]`
    pct    = (p_peak - p_exit) / p_exit
    usd    = q * (p_peak - p_exit)
    emit   pct >= s2e_min_pct and usd >= s2e_min_usd: `open` at the first tick that
           crosses both, updated in place when the peak rises, `final` once the watermark
           is past `t + s2e_window_s` (a window that never crossed emits nothing).
    severity = min(1, pct / 2)

    Watches that have not crossed wait in a per-mint heap keyed by the price that would
    cross both thresholds, crossed ones on a per-mint `Ladder` by peak (a new high moves
    every peak below it to the same price, so they share a group), so a tick costs O(1)
    unless it crosses or raises something.
    """

    kind = MomentKind.S2E
    roles = frozenset({LegRole.SELL})

    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        th = self.th
        self._pct_factor = 1 + th.s2e_min_pct
        self._min_usd = th.s2e_min_usd
        self._min_pct = th.s2e_min_pct
        self._window = th.s2e_window_s
        self._thresholds = explain_text(
            {"min_pct": th.s2e_min_pct, "min_usd": th.s2e_min_usd, "window_s": th.s2e_window_s})
        self.watches: dict[str, _Watch] = {}
        self.live: dict[str, int] = {}  # mint -> watches
        self.timers = TimerQueue()
        self.seq = 0

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(pct / 2)

    def on_trade(self, leg: Leg) -> list[Moment]:
        price = leg.price_usd
        if price is None or leg.role is not _SELL or price <= ZERO:
            return []
        wallet, mint, sig = leg.wallet, leg.mint, leg.signature
        wid = f"{wallet}|{mint}|{sig}"
        watches = self.watches
        if wid in watches:
            return []
        # slightly below the exact crossing price: rounding may only make us look too early
        by_pct = price * self._pct_factor
        by_usd = price + self._min_usd / leg.amount
        p_cross = (by_usd if by_usd > by_pct else by_pct) * _EARLY  # max(by_pct, by_usd)
        end = leg.time + self._window
        watches[wid] = _Watch(wid, wallet, mint, sig, leg.slot, leg.time, end, leg.amount, price, p_cross)
        self.seq = seq = self.seq + 1
        heap = self.pending.get(mint)
        if heap is None:
            self.pending[mint] = [(p_cross, seq, wid)]
        else:
            heappush(heap, (p_cross, seq, wid))
        self.timers.push(end, wid)
        live = self.live
        count = live.get(mint, 0)
        live[mint] = count + 1
        if count == 0:
            self.ctx.watch(mint)
        return []

    def on_tick(self, ticks: SlotTicks) -> list[Moment]:
        mint, _, now, _, high, _, _ = ticks  # SlotTicks (NamedTuple attribute reads are slow in 3.11)
        ladder = self.crossed.get(mint)
        raised: list[str] = []  # crossed watches whose peak is now `high`
        if ladder is not None and ladder.keys and ladder.keys[0] < high:  # peaks this slot beats
            watches = self.watches
            for _, wids in ladder.take_below(high):
                for wid in wids:
                    w = watches.get(wid)
                    if w is None:
                        continue  # window closed
                    w.peak, w.peak_time = high, now
                    self._defer(w, _OPEN, now, "deepened")
                    raised.append(wid)
        heap = self.pending.get(mint)
        if heap and heap[0][0] <= high:
            min_pct, min_usd = self._min_pct, self._min_usd
            retry = []
            watches = self.watches
            while heap and heap[0][0] <= high:
                item = heappop(heap)
                w = watches.get(item[2])
                if w is None:
                    continue  # window closed
                gain = high - w.p_exit
                if now <= w.t or gain / w.p_exit < min_pct or w.q * gain < min_usd:
                    retry.append(item)
                    continue
                w.crossed, w.peak, w.peak_time, w.detected_at = True, high, now, now
                raised.append(w.wid)
                self._defer(w, _OPEN, now, "crossed")
            for item in retry:
                heappush(heap, item)
        if raised:
            if ladder is None:
                ladder = self.crossed[mint] = Ladder()
            ladder.put(high, raised)
        return []  # S2E/BHD moments are deferred (`_defer`)

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        heap = self.timers._heap  # peek without a call: this runs every slot
        if not heap or heap[0][0] >= wm.time:
            return []
        due = self.timers.pop_due(wm.time)
        if not due:
            return []
        for end, wid in due:
            w = self.watches.pop(wid, None)
            if w is None:
                continue
            mint = w.mint
            if w.crossed:
                self._defer(w, _FINAL, end, "final")
            self._release(mint)
        return []  # S2E/BHD moments are deferred (`_defer`)

    def _release(self, mint: str) -> None:
        live = self.live[mint] - 1
        if live:
            self.live[mint] = live
            self._compact(mint, live, self.watches)
            return
        del self.live[mint]
        self.pending.pop(mint, None)
        self.crossed.pop(mint, None)
        self.ctx.unwatch(mint)

    def _moment(self, w: _Watch, status: MomentStatus, updated_at: int, state: str) -> Moment:
        mid = w.mid
        if mid is None:
            mid = w.mid = moment_id(_S2E, w.wallet, w.mint, w.sig)
        texts = w.texts
        if texts is None:
            texts = w.texts = (decimal_text(w.q), decimal_text(w.p_exit))
        q_text, p_exit_text = texts
        p_exit, peak = w.p_exit, w.peak
        gain = peak - p_exit
        pct = gain / p_exit
        half = pct / 2
        return make_moment(
            mid, _S2E, w.wallet, w.mint, w.sig, w.slot, pct, w.q * gain,
            ZERO if half < ZERO else ONE if half > ONE else half,  # severity = min(1, pct / 2)
            w.t, w.end, status, w.detected_at, updated_at, RULE,
            {"q": q_text, "p_exit": p_exit_text, "p_peak": self._text(peak), "t_exit": w.t,
             "t_peak": w.peak_time},
            self._thresholds, state,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "watches": [w.to_list() for w in self.watches.values()],
            "pending": {m: [[str(p), s, wid] for p, s, wid in h] for m, h in self.pending.items()},
            "crossed": {m: [[str(p), 0, wid] for p, wid in ladder.entries()] for m, ladder in self.crossed.items()},
            "live": self.live,
            "timers": self.timers.to_dict(),
            "seq": self.seq,
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.watches = {w[0]: _Watch.from_list(w) for w in d["watches"]}
        self.pending = {m: [(Decimal(p), s, wid) for p, s, wid in h] for m, h in d["pending"].items()}
        self.crossed = {m: Ladder.of([(Decimal(p), wid) for p, _, wid in h]) for m, h in d["crossed"].items()}
        self.live = dict(d["live"])
        self.timers = TimerQueue.from_dict(d["timers"])
        self.seq = d["seq"]

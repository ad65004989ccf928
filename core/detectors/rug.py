"""RUG — a held token collapsed from its high since the wallet's entry and stayed down."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.detectors.base import ZERO, Detector, Leg, LegRole, ShardContext, build_moment, clamp01
from core.models import Moment, MomentKind, MomentStatus
from core.oracle import SlotTicks
from core.windows import TimerQueue, Watermark

__all__ = ["RugPull"]

RULE = "pct = (p_now - p_high) / p_high; usd = cost_basis_held - held_with_basis * p_now"


class _Watch:
    __slots__ = ("key", "wallet", "mint", "sig", "slot", "t", "p_high", "p_now", "t_now", "since", "deadline",
                 "detected_at")

    def __init__(self, key: str, leg: Leg, price: Decimal) -> None:
        self.key, self.wallet, self.mint, self.sig, self.slot, self.t = (
            key, leg.wallet, leg.mint, leg.signature, leg.slot, leg.time)
        self.p_high = self.p_now = price
        self.t_now = leg.time
        self.since: int | None = None  # candidate since (crossing time)
        self.deadline = 0
        self.detected_at = 0  # 0 = never emitted

    def to_list(self) -> list[Any]:
        return [self.key, self.wallet, self.mint, self.sig, self.slot, self.t, str(self.p_high), str(self.p_now),
                self.t_now, self.since, self.deadline, self.detected_at]

    @classmethod
    def from_list(cls, d: list[Any]) -> _Watch:
        w = cls.__new__(cls)
        (w.key, w.wallet, w.mint, w.sig, w.slot, w.t, p_high, p_now, w.t_now, w.since, w.deadline,
         w.detected_at) = d
        w.p_high, w.p_now = Decimal(p_high), Decimal(p_now)
        return w


class RugPull(Detector):
    """RUG — per (wallet, mint) holding episode, from its entry BUY (the first priced BUY
    since the position was last empty; transfers in have no entry).

    p_high = highest tick since the entry (the entry's own price included)
    p_now  = the latest tick
    pct    = (p_now - p_high) / p_high
    usd    = cost basis still held - (amount held in lots with a cost basis) * p_now
    emit   pct <= rug_max_pct with cost basis held >= rug_min_cost_usd makes a candidate,
           emitted `open` at once and updated in place while it stays down; if it is still
           so when the watermark passes crossing time + rug_confirm_s, it turns `final`
           (sig_ref = the entry BUY) and the watch ends.
    severity = min(1, -pct)

    Recovery (the trader-fair reading): a candidate that climbs back above the threshold,
    or whose held cost basis drops under the minimum, before confirmation is cancelled:
    the same moment is upserted, still `open`, with `state` "recovered" / "below_min_cost"
    and the current pct/usd, and never becomes `final` from that crossing. A new collapse
    starts a fresh 24 h confirmation (same id). Selling out ends the episode; an open
    candidate is then upserted with state "exited" and stays open.
    """

    kind = MomentKind.RUG

    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        self._factor = 1 + self.th.rug_max_pct
        self.watches: dict[str, _Watch] = {}  # "wallet|mint" -> watch
        self.by_mint: dict[str, dict[str, None]] = {}
        self.timers = TimerQueue()

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(-pct)

    def on_trade(self, leg: Leg) -> list[Moment]:
        role = leg.role
        if role is LegRole.BUY:
            if not leg.opened_entry or leg.price_usd is None:
                return []
            key = f"{leg.wallet}|{leg.mint}"
            out = self._end(key, "exited", leg.time)
            self.watches[key] = _Watch(key, leg, leg.price_usd)
            self.by_mint.setdefault(leg.mint, {})[key] = None
            self.ctx.watch(leg.mint)
            return out
        if role is LegRole.SELL or role is LegRole.SEND:
            key = f"{leg.wallet}|{leg.mint}"
            w = self.watches.get(key)
            if w is not None:
                entry = self.ctx.positions.entry(leg.wallet, leg.mint)
                if entry is None or entry.signature != w.sig:
                    return self._end(key, "exited", leg.time)
        return []

    def on_tick(self, ticks: SlotTicks) -> list[Moment]:
        keys = self.by_mint.get(ticks.mint)
        if not keys:
            return []
        out: list[Moment] = []
        high, close, now = ticks.high, ticks.close, ticks.block_time
        th = self.th
        for key in keys:
            w = self.watches[key]
            moved = close != w.p_now
            if high > w.p_high:
                w.p_high, moved = high, True
            w.p_now, w.t_now = close, now
            if not moved:
                continue
            if close <= w.p_high * self._factor:
                _, cost = self.ctx.positions.basis(w.wallet, w.mint)
                if cost >= th.rug_min_cost_usd:
                    if w.since is None:
                        w.since, w.deadline = now, now + th.rug_confirm_s
                        self.timers.push(w.deadline, key)
                        if not w.detected_at:
                            w.detected_at = now
                    out.append(self._moment(w, MomentStatus.OPEN, now, "collapsed"))
                elif w.since is not None:
                    w.since = None
                    out.append(self._moment(w, MomentStatus.OPEN, now, "below_min_cost"))
            elif w.since is not None:
                w.since = None
                out.append(self._moment(w, MomentStatus.OPEN, now, "recovered"))
        return out

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        due = self.timers.pop_due(wm.time)
        if not due:
            return []
        out: list[Moment] = []
        th = self.th
        for deadline, key in due:
            w = self.watches.get(key)
            if w is None or w.since is None or w.deadline != deadline:
                continue  # cancelled or superseded
            _, cost = self.ctx.positions.basis(w.wallet, w.mint)
            down = w.p_now <= w.p_high * self._factor
            if down and cost >= th.rug_min_cost_usd:
                out.append(self._moment(w, MomentStatus.FINAL, deadline, "confirmed"))
                self._remove(key)
            else:
                w.since = None
                out.append(self._moment(w, MomentStatus.OPEN, deadline, "below_min_cost" if down else "recovered"))
        return out

    def _end(self, key: str, state: str, now: int) -> list[Moment]:
        w = self.watches.get(key)
        if w is None:
            return []
        self._remove(key)
        if w.since is None:
            return []
        w.since = None
        return [self._moment(w, MomentStatus.OPEN, now, state)]

    def _remove(self, key: str) -> None:
        w = self.watches.pop(key)
        keys = self.by_mint[w.mint]
        del keys[key]
        if not keys:
            del self.by_mint[w.mint]
        self.ctx.unwatch(w.mint)

    def _moment(self, w: _Watch, status: MomentStatus, updated_at: int, state: str) -> Moment:
        th = self.th
        amount, cost = self.ctx.positions.basis(w.wallet, w.mint)
        if state == "exited":
            amount, cost = ZERO, ZERO
        pct = (w.p_now - w.p_high) / w.p_high
        usd = cost - amount * w.p_now
        return build_moment(
            MomentKind.RUG, wallet=w.wallet, mint=w.mint, sig_ref=w.sig, slot_ref=w.slot, pct=pct, usd=usd,
            severity=self.severity(pct, usd), window=(w.t, w.deadline), status=status,
            detected_at=w.detected_at, updated_at=updated_at, rule=RULE,
            inputs={"p_high": w.p_high, "p_now": w.p_now, "t_now": w.t_now, "cost_basis_held": cost,
                    "held_with_basis": amount, "t_entry": w.t,
                    "crossed_at": w.deadline - th.rug_confirm_s if w.deadline else None},
            thresholds={"max_pct": th.rug_max_pct, "confirm_s": th.rug_confirm_s,
                        "min_cost_usd": th.rug_min_cost_usd},
            state=state,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "watches": [w.to_list() for w in self.watches.values()],
            "by_mint": {m: list(k) for m, k in self.by_mint.items()},
            "timers": self.timers.to_dict(),
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.watches = {w[0]: _Watch.from_list(w) for w in d["watches"]}
        self.by_mint = {m: dict.fromkeys(k) for m, k in d["by_mint"].items()}
        self.timers = TimerQueue.from_dict(d["timers"])

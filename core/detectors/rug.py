"""RUG — a held token collapsed from its high since the wallet's entry and stayed down."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.detectors._rug_book import Group, MintRug, Watch
from core.detectors.base import (
    ONE,
    ZERO,
    Detector,
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

__all__ = ["RugPull"]

_BUY = LegRole.BUY
_OPEN, _FINAL = MomentStatus.OPEN, MomentStatus.FINAL
_RUG = MomentKind.RUG
RULE = "pct = (p_now - p_high) / p_high; usd = cost_basis_held - held_with_basis * p_now"
class RugPull(Detector):
    """RUG — per (wallet, mint) holding episode, from its entry BUY (the first priced BUY
    since the position was last empty; transfers in have no entry).

    p_high = highest tick since the entry (the entry's own price included)
    p_now  = the latest tick (a slot's close)
    pct    = (p_now - p_high) / p_high
    usd    = cost basis still held - (amount held in lots with a cost basis) * p_now
    emit   pct <= rug_max_pct with cost basis held >= rug_min_cost_usd makes a candidate,
           emitted `open` at once and updated in place when p_now sets a new low; if it is
           still down when the watermark passes crossing time + rug_confirm_s, it turns
           `final` (sig_ref = the entry BUY) and the watch ends.
    severity = min(1, -pct)

    Recovery (the trader-fair reading): a candidate that climbs back above the threshold,
    or whose held cost basis drops under the minimum, before confirmation is cancelled:
    the same moment is upserted, still `open`, with `state` "recovered" / "below_min_cost"
    and the current pct/usd, and never becomes `final` from that crossing. A new collapse
    starts a fresh confirmation period (same id). Selling out ends the episode; an open
    candidate is then upserted with state "exited" and stays open.

    Per mint, watches in the same state share a group and watches below the minimum cost
    are parked (`core.detectors._rug_book`), so a tick costs O(log groups) plus the
    moments it emits, however many wallets hold the mint.
    """

    kind = MomentKind.RUG
    roles = frozenset({LegRole.BUY, LegRole.SELL, LegRole.SEND})

    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        th = self.th
        self._factor = 1 + th.rug_max_pct
        self._min_cost = th.rug_min_cost_usd
        self._confirm_s = th.rug_confirm_s
        self._thresholds = explain_text(
            {"max_pct": th.rug_max_pct, "confirm_s": th.rug_confirm_s, "min_cost_usd": th.rug_min_cost_usd})
        self.watches: dict[str, Watch] = {}  # "wallet|mint" -> watch
        self.mints: dict[str, MintRug] = {}
        self.groups: dict[int, Group] = {}  # candidate groups by gid (for timers)
        self.timers = TimerQueue()
        self.gid = 0

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(-pct)

    # -- hooks ----------------------------------------------------------------------------
    def on_trade(self, leg: Leg) -> list[Moment]:
        mint = leg.mint
        opens = leg.opened_entry and leg.role is _BUY and leg.price_usd is not None
        if not opens and mint not in self.mints:
            return []  # nobody watches this mint (e.g. the quote spent on a buy)
        wallet = leg.wallet
        key = f"{wallet}|{mint}"
        w = self.watches.get(key)
        if opens:
            out = [] if w is None else self._end(w, "exited", leg.time)
            self._add(key, leg)
            return out
        if w is None:
            return []
        pos = self.ctx.positions.position(wallet, mint)
        if pos is None or pos.entry_sig != w.sig:  # the episode that entry opened is over
            return self._end(w, "exited", leg.time)
        eligible = pos.basis_cost >= self._min_cost
        group = w.group
        if eligible == (group is not None):
            return []
        ms = self.mints[w.mint]
        if eligible:  # unpark: p_high from the ticks since it was parked
            high = ms.high_after(w.ref_slot)
            ms.detach(w)
            self._insert(ms, w, w.ref_price if high is None or high < w.ref_price else high)
            return []
        self._detach(ms, w)
        ms.park(w, group.p_high, leg.slot)  # type: ignore[union-attr]
        if group.candidate:  # type: ignore[union-attr]  # no longer holds enough to be a rug victim
            return [self._moment(w, group, _OPEN, leg.time, "below_min_cost")]  # type: ignore[arg-type]
        return []

    def on_tick(self, ticks: SlotTicks) -> list[Moment]:
        mint, slot, now, _, high, _, close = ticks  # SlotTicks (NamedTuple attribute reads are slow in 3.11)
        ms = self.mints.get(mint)
        if ms is None:
            return []
        ms.p_now, ms.t_now = close, now
        if ms.parked:
            ms.push_high(slot, high)
        keys = ms.keys
        if keys and keys[0] < high:
            ms.raise_to(high)
        factor = self._factor
        if not ms.cands and not (keys and keys[-1] * factor >= close):
            return []  # nothing collapsed, nothing to recover or deepen
        out: list[Moment] = []
        for group in list(ms.cands.values()):
            if high > group.p_high:
                group.p_high = high
            if close > group.p_high * factor:
                self._recover(ms, group, now, out)
            elif close < group.p_low:
                group.p_low = close
                for w in group.members.values():
                    out.append(self._moment(w, group, _OPEN, now, "collapsed"))
        for group in ms.collapsed(close, factor):
            group.candidate, group.since, group.deadline, group.p_low = True, now, now + self._confirm_s, close
            ms.cands[group.gid] = group
            self.groups[group.gid] = group
            self.timers.push(group.deadline, str(group.gid))
            for w in group.members.values():
                if not w.detected_at:
                    w.detected_at = now
                out.append(self._moment(w, group, _OPEN, now, "collapsed"))
        return out

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        heap = self.timers._heap  # peek without a call: this runs every slot
        if not heap or heap[0][0] >= wm.time:
            return []
        due = self.timers.pop_due(wm.time)
        if not due:
            return []
        out: list[Moment] = []
        for deadline, gid in due:
            group = self.groups.pop(int(gid), None)
            if group is None:
                continue  # recovered or emptied before its deadline
            for w in list(group.members.values()):
                out.append(self._moment(w, group, _FINAL, deadline, "confirmed"))
                self._forget(w)
        return out

    # -- groups ---------------------------------------------------------------------------
    def _add(self, key: str, leg: Leg) -> None:
        w = self.watches[key] = Watch(key, leg.wallet, leg.mint, leg.signature, leg.slot, leg.time)
        ms = self.mints.get(leg.mint)
        if ms is None:
            ms = self.mints[leg.mint] = MintRug()
        price: Decimal = leg.price_usd  # type: ignore[assignment]
        if self.ctx.positions.basis_cost(leg.wallet, leg.mint) >= self._min_cost:
            self._insert(ms, w, price)
        else:
            ms.park(w, price, leg.slot)
        self.ctx.watch(leg.mint)

    def _insert(self, ms: MintRug, w: Watch, p_high: Decimal) -> None:
        if ms.insert(w, p_high, self.gid + 1):
            self.gid += 1

    def _detach(self, ms: MintRug, w: Watch) -> None:
        emptied = ms.detach(w)
        if emptied is not None:
            self.groups.pop(emptied.gid, None)

    def _recover(self, ms: MintRug, group: Group, now: int, out: list[Moment]) -> None:
        del ms.cands[group.gid]
        self.groups.pop(group.gid, None)
        for w in group.members.values():
            out.append(self._moment(w, group, _OPEN, now, "recovered"))
            self._insert(ms, w, group.p_high)

    def _end(self, w: Watch, state: str, now: int) -> list[Moment]:
        group = w.group
        out = []
        if group is not None and group.candidate:
            out.append(self._moment(w, group, _OPEN, now, state, exited=True))
        self._forget(w)
        return out

    def _forget(self, w: Watch) -> None:
        ms = self.mints[w.mint]
        self._detach(ms, w)
        del self.watches[w.key]
        if ms.empty():
            del self.mints[w.mint]
        self.ctx.unwatch(w.mint)

    def _moment(self, w: Watch, group: Group, status: MomentStatus, updated_at: int, state: str, *,
                exited: bool = False) -> Moment:
        mid = w.mid
        if mid is None:
            mid = w.mid = moment_id(_RUG, w.wallet, w.mint, w.sig)
        amount, cost = (ZERO, ZERO) if exited else self.ctx.positions.basis(w.wallet, w.mint)
        p_now = self.mints[w.mint].p_now
        p_high = group.p_high
        pct = (p_now - p_high) / p_high
        neg = -pct
        return make_moment(
            mid, _RUG, w.wallet, w.mint, w.sig, w.slot, pct, cost - amount * p_now,
            ZERO if neg < ZERO else ONE if neg > ONE else neg,  # severity = min(1, -pct)
            w.t, group.deadline, status, w.detected_at, updated_at, RULE,
            {"p_high": decimal_text(p_high), "p_now": decimal_text(p_now), "cost_basis_held": decimal_text(cost),
             "held_with_basis": decimal_text(amount), "t_entry": w.t, "crossed_at": group.since or None},
            self._thresholds, state,
        )

    # -- checkpoints ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        mints = {}
        for mint, ms in self.mints.items():
            groups = ms.groups + list(ms.cands.values())
            mints[mint] = {
                "p_now": str(ms.p_now), "t_now": ms.t_now,
                "groups": [[g.gid, g.candidate, str(g.p_high), g.since, g.deadline, str(g.p_low), list(g.members)]
                           for g in groups],
                "parked": list(ms.parked),
                "floors": [list(f) for f in ms.floors],
                "stack": [[slot, str(p)] for slot, p in ms.stack],
            }
        return {
            "watches": [[w.key, w.wallet, w.mint, w.sig, w.slot, w.t, w.detected_at, str(w.ref_price), w.ref_slot]
                        for w in self.watches.values()],
            "mints": mints, "timers": self.timers.to_dict(), "gid": self.gid,
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.watches = {}
        for key, wallet, mint, sig, slot, t, detected_at, ref_price, ref_slot in d["watches"]:
            w = self.watches[key] = Watch(key, wallet, mint, sig, slot, t)
            w.detected_at, w.ref_price, w.ref_slot = detected_at, Decimal(ref_price), ref_slot
        self.mints, self.groups = {}, {}
        for mint, m in d["mints"].items():
            ms = self.mints[mint] = MintRug()
            ms.p_now, ms.t_now = Decimal(m["p_now"]), m["t_now"]
            eligible: list[Group] = []
            for gid, candidate, p_high, since, deadline, p_low, members in m["groups"]:
                g = Group(gid, Decimal(p_high))
                g.candidate, g.since, g.deadline, g.p_low = candidate, since, deadline, Decimal(p_low)
                for key in members:
                    g.members[key] = self.watches[key]
                    self.watches[key].group = g
                if candidate:
                    ms.cands[gid] = g
                    self.groups[gid] = g
                else:
                    eligible.append(g)
            eligible.sort(key=lambda g: g.p_high)
            ms.keys, ms.groups = [g.p_high for g in eligible], eligible
            ms.parked = {key: self.watches[key] for key in m["parked"]}
            ms.floors = [(slot, key) for slot, key in m["floors"]]
            ms.stack = [(slot, Decimal(p)) for slot, p in m["stack"]]
        self.timers = TimerQueue.from_dict(d["timers"])
        self.gid = d["gid"]

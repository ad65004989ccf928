"""RUG — a held token collapsed from its high since the wallet's entry and stayed down."""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import Any

from core.detectors.base import ZERO, Detector, Leg, LegRole, ShardContext, build_moment, clamp01, explain_text
from core.models import Moment, MomentKind, MomentStatus, moment_id
from core.oracle import SlotTicks
from core.windows import TimerQueue, Watermark

__all__ = ["RugPull"]

RULE = "pct = (p_now - p_high) / p_high; usd = cost_basis_held - held_with_basis * p_now"
IDLE, PARKED, CANDIDATE = 0, 1, 2


class _Watch:
    __slots__ = ("key", "wallet", "mint", "sig", "slot", "t", "detected_at", "eligible", "group", "mid")

    def __init__(self, key: str, wallet: str, mint: str, sig: str, slot: int, t: int, eligible: bool) -> None:
        self.key, self.wallet, self.mint, self.sig, self.slot, self.t = key, wallet, mint, sig, slot, t
        self.detected_at = 0  # 0 = never emitted
        self.eligible = eligible  # cost basis held >= rug_min_cost_usd
        self.group: _Group = None  # type: ignore[assignment]
        self.mid: str | None = None


class _Group:
    """Watches of one mint in the same state: same p_high (and, candidates, same crossing)."""

    __slots__ = ("gid", "table", "p_high", "members", "since", "deadline", "p_low")

    def __init__(self, gid: int, table: int, p_high: Decimal) -> None:
        self.gid, self.table, self.p_high = gid, table, p_high
        self.members: dict[str, _Watch] = {}
        self.since = self.deadline = 0
        self.p_low = ZERO


class _Mint:
    """RUG state of one mint: groups by p_high (eligible / parked), candidate groups, last tick."""

    __slots__ = ("tables", "keys", "cands", "p_now", "t_now")

    def __init__(self) -> None:
        self.tables: tuple[dict[Decimal, _Group], dict[Decimal, _Group]] = ({}, {})
        self.keys: tuple[list[Decimal], list[Decimal]] = ([], [])  # sorted p_high per table
        self.cands: dict[int, _Group] = {}
        self.p_now = ZERO
        self.t_now = 0


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

    Watches of a mint that are in the same state share a group (every later tick moves
    them alike), kept sorted by p_high, so a tick costs O(log groups) plus the moments it
    emits, however many wallets hold the mint.
    """

    kind = MomentKind.RUG
    roles = frozenset({LegRole.BUY, LegRole.SELL, LegRole.SEND})

    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        th = self.th
        self._factor = 1 + th.rug_max_pct
        self._thresholds = explain_text(
            {"max_pct": th.rug_max_pct, "confirm_s": th.rug_confirm_s, "min_cost_usd": th.rug_min_cost_usd})
        self.watches: dict[str, _Watch] = {}  # "wallet|mint" -> watch
        self.mints: dict[str, _Mint] = {}
        self.groups: dict[int, _Group] = {}  # candidate groups by gid (for timers)
        self.timers = TimerQueue()
        self.gid = 0

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(-pct)

    # -- hooks ----------------------------------------------------------------------------
    def on_trade(self, leg: Leg) -> list[Moment]:
        role = leg.role
        if role is LegRole.RECEIVE:
            return []
        key = f"{leg.wallet}|{leg.mint}"
        w = self.watches.get(key)
        if role is LegRole.BUY and leg.opened_entry and leg.price_usd is not None:
            out = [] if w is None else self._end(w, "exited", leg.time)
            self._add(key, leg)
            return out
        if w is None:
            return []
        entry = self.ctx.positions.entry(leg.wallet, leg.mint)
        if entry is None or entry.signature != w.sig:
            return self._end(w, "exited", leg.time)
        eligible = self.ctx.positions.basis(leg.wallet, leg.mint)[1] >= self.th.rug_min_cost_usd
        if eligible == w.eligible:
            return []
        w.eligible = eligible
        group = w.group
        ms = self.mints[w.mint]
        self._detach(ms, w)
        self._insert(ms, w, group.p_high)
        if group.table == CANDIDATE:  # it no longer holds enough to be a rug victim
            return [self._moment(w, group, MomentStatus.OPEN, leg.time, "below_min_cost", deadline=group.deadline)]
        return []

    def on_tick(self, ticks: SlotTicks) -> list[Moment]:
        ms = self.mints.get(ticks.mint)
        if ms is None:
            return []
        high, close, now = ticks.high, ticks.close, ticks.block_time
        ms.p_now, ms.t_now = close, now
        for table in (IDLE, PARKED):
            keys = ms.keys[table]
            if keys and keys[0] < high:
                self._raise(ms, table, high)
        out: list[Moment] = []
        factor = self._factor
        for group in list(ms.cands.values()):
            if high > group.p_high:
                group.p_high = high
            if close > group.p_high * factor:
                self._recover(ms, group, now, out)
            elif close < group.p_low:
                group.p_low = close
                for w in group.members.values():
                    out.append(self._moment(w, group, MomentStatus.OPEN, now, "collapsed"))
        keys = ms.keys[IDLE]
        while keys and keys[-1] * factor >= close:
            group = ms.tables[IDLE].pop(keys.pop())
            group.table, group.since, group.deadline, group.p_low = CANDIDATE, now, now + self.th.rug_confirm_s, close
            ms.cands[group.gid] = group
            self.groups[group.gid] = group
            self.timers.push(group.deadline, str(group.gid))
            for w in group.members.values():
                if not w.detected_at:
                    w.detected_at = now
                out.append(self._moment(w, group, MomentStatus.OPEN, now, "collapsed"))
        return out

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        due = self.timers.pop_due(wm.time)
        if not due:
            return []
        out: list[Moment] = []
        for deadline, gid in due:
            group = self.groups.pop(int(gid), None)
            if group is None:
                continue  # recovered or emptied before its deadline
            for w in list(group.members.values()):
                out.append(self._moment(w, group, MomentStatus.FINAL, deadline, "confirmed"))
                self._forget(w)
        return out

    # -- groups ---------------------------------------------------------------------------
    def _add(self, key: str, leg: Leg) -> None:
        eligible = self.ctx.positions.basis(leg.wallet, leg.mint)[1] >= self.th.rug_min_cost_usd
        w = _Watch(key, leg.wallet, leg.mint, leg.signature, leg.slot, leg.time, eligible)
        self.watches[key] = w
        ms = self.mints.get(leg.mint)
        if ms is None:
            ms = self.mints[leg.mint] = _Mint()
        self._insert(ms, w, leg.price_usd)  # type: ignore[arg-type]
        self.ctx.watch(leg.mint)

    def _insert(self, ms: _Mint, w: _Watch, p_high: Decimal) -> None:
        table = IDLE if w.eligible else PARKED
        groups = ms.tables[table]
        group = groups.get(p_high)
        if group is None:
            self.gid += 1
            group = groups[p_high] = _Group(self.gid, table, p_high)
            bisect.insort(ms.keys[table], p_high)
        group.members[w.key] = w
        w.group = group

    def _detach(self, ms: _Mint, w: _Watch) -> None:
        group = w.group
        del group.members[w.key]
        if group.members:
            return
        if group.table == CANDIDATE:
            del ms.cands[group.gid]
            self.groups.pop(group.gid, None)
        else:
            del ms.tables[group.table][group.p_high]
            keys = ms.keys[group.table]
            del keys[bisect.bisect_left(keys, group.p_high)]

    def _raise(self, ms: _Mint, table: int, high: Decimal) -> None:
        """Every group of `table` below `high` now has p_high = high: merge them."""
        groups, keys = ms.tables[table], ms.keys[table]
        cut = bisect.bisect_left(keys, high)
        merged = [groups.pop(k) for k in keys[:cut]]
        del keys[:cut]
        existing = groups.get(high)
        if existing is not None:
            merged.append(existing)
        else:
            keys.insert(0, high)
        base = max(merged, key=lambda g: len(g.members))
        for group in merged:
            if group is not base:
                for w in group.members.values():
                    w.group = base
                base.members.update(group.members)
        base.p_high = high
        groups[high] = base

    def _recover(self, ms: _Mint, group: _Group, now: int, out: list[Moment]) -> None:
        del ms.cands[group.gid]
        self.groups.pop(group.gid, None)
        for w in group.members.values():
            out.append(self._moment(w, group, MomentStatus.OPEN, now, "recovered"))
            self._insert(ms, w, group.p_high)

    def _end(self, w: _Watch, state: str, now: int) -> list[Moment]:
        group = w.group
        out = [] if group.table != CANDIDATE else [self._moment(w, group, MomentStatus.OPEN, now, state, exited=True)]
        self._forget(w)
        return out

    def _forget(self, w: _Watch) -> None:
        ms = self.mints[w.mint]
        self._detach(ms, w)
        del self.watches[w.key]
        if not any(ms.tables[0]) and not any(ms.tables[1]) and not ms.cands:
            del self.mints[w.mint]
        self.ctx.unwatch(w.mint)

    def _moment(self, w: _Watch, group: _Group, status: MomentStatus, updated_at: int, state: str, *,
                exited: bool = False, deadline: int | None = None) -> Moment:
        if w.mid is None:
            w.mid = moment_id(MomentKind.RUG, w.wallet, w.mint, w.sig)
        amount, cost = (ZERO, ZERO) if exited else self.ctx.positions.basis(w.wallet, w.mint)
        p_now = self.mints[w.mint].p_now
        p_high = group.p_high
        pct = (p_now - p_high) / p_high
        end = group.deadline if deadline is None else deadline
        return build_moment(
            MomentKind.RUG, mid=w.mid, wallet=w.wallet, mint=w.mint, sig_ref=w.sig, slot_ref=w.slot, pct=pct,
            usd=cost - amount * p_now, severity=self.severity(pct, ZERO), window=(w.t, end), status=status,
            detected_at=w.detected_at, updated_at=updated_at, rule=RULE,
            inputs={"p_high": p_high, "p_now": p_now, "cost_basis_held": cost, "held_with_basis": amount,
                    "t_entry": w.t, "crossed_at": group.since or None},
            thresholds=self._thresholds, state=state,
        )

    # -- checkpoints ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        mints = {}
        for mint, ms in self.mints.items():
            groups = [g for table in ms.tables for g in table.values()] + list(ms.cands.values())
            mints[mint] = {
                "p_now": str(ms.p_now), "t_now": ms.t_now,
                "groups": [[g.gid, g.table, str(g.p_high), g.since, g.deadline, str(g.p_low), list(g.members)]
                           for g in groups],
            }
        return {
            "watches": [[w.key, w.wallet, w.mint, w.sig, w.slot, w.t, w.detected_at, w.eligible]
                        for w in self.watches.values()],
            "mints": mints, "timers": self.timers.to_dict(), "gid": self.gid,
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.watches = {}
        for key, wallet, mint, sig, slot, t, detected_at, eligible in d["watches"]:
            w = self.watches[key] = _Watch(key, wallet, mint, sig, slot, t, eligible)
            w.detected_at = detected_at
        self.mints, self.groups = {}, {}
        for mint, m in d["mints"].items():
            ms = self.mints[mint] = _Mint()
            ms.p_now, ms.t_now = Decimal(m["p_now"]), m["t_now"]
            for gid, table, p_high, since, deadline, p_low, members in m["groups"]:
                g = _Group(gid, table, Decimal(p_high))
                g.since, g.deadline, g.p_low = since, deadline, Decimal(p_low)
                for key in members:
                    g.members[key] = self.watches[key]
                    self.watches[key].group = g
                if table == CANDIDATE:
                    ms.cands[gid] = g
                    self.groups[gid] = g
                else:
                    ms.tables[table][g.p_high] = g
            for table in (IDLE, PARKED):
                ms.keys[table].extend(sorted(ms.tables[table]))
        self.timers = TimerQueue.from_dict(d["timers"])
        self.gid = d["gid"]

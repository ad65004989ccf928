"""BAD_ROUTE — a swap executed well off the price everyone else got around the same time."""

from __future__ import annotations

import heapq
from collections import deque
from decimal import Decimal
from typing import Any

from core.detectors.base import Detector, Leg, LegRole, ShardContext, build_moment, clamp01, explain_text
from core.models import Moment, MomentKind, MomentStatus, Tick, moment_id
from core.oracle import MintHistory, SlotTicks, reference_price
from core.snapshot import decode_tick, encode_tick
from core.windows import TimerQueue, Watermark

__all__ = ["BadRoute"]

RULE = ("p_ref = median of other wallets' ticks within +/- window; pct = (p_exec - p_ref) / p_ref for a BUY, "
        "(p_ref - p_exec) / p_ref for a SELL; usd = amount * |p_exec - p_ref|")


class _Pending:
    __slots__ = ("key", "wallet", "mint", "sig", "slot", "t", "buy", "amount", "p_exec")

    def __init__(self, key: str, leg: Leg) -> None:
        self.key, self.wallet, self.mint, self.sig, self.slot, self.t = (
            key, leg.wallet, leg.mint, leg.signature, leg.slot, leg.time)
        self.buy = leg.role is LegRole.BUY
        self.amount, self.p_exec = leg.amount, leg.price_usd

    def to_list(self) -> list[Any]:
        return [self.key, self.wallet, self.mint, self.sig, self.slot, self.t, self.buy, str(self.amount),
                str(self.p_exec)]

    @classmethod
    def from_list(cls, d: list[Any]) -> _Pending:
        p = cls.__new__(cls)
        p.key, p.wallet, p.mint, p.sig, p.slot, p.t, p.buy, amount, p_exec = d
        p.amount, p.p_exec = Decimal(amount), Decimal(p_exec)
        return p


class BadRoute(Detector):
    """BAD_ROUTE — one priced trade leg of `amount` at `p_exec` (USD) at time `t` (for a
    token→token swap, the bought leg if it is priced, else the sold leg).

    p_ref = median of the mint's ticks within `[t - window, t + window]` from wallets
            other than the trader, at least `bad_route_min_ref_ticks` of them
    pct   = (p_exec - p_ref) / p_ref for a BUY, (p_ref - p_exec) / p_ref for a SELL
    usd   = amount * |p_exec - p_ref|
    emit  pct >= bad_route_min_pct and usd >= bad_route_min_usd, judged once the
          watermark is past `t + window` (no judgement without a reference); a point
          judgement, emitted `final` at once with detected_at = t + window.
    severity = min(1, pct * 10)

    The ticks come from the shard's subscription to the mint: its history (the last
    window before the trade) and then every slot until the judgement.
    """

    kind = MomentKind.BAD_ROUTE
    roles = frozenset({LegRole.BUY, LegRole.SELL})

    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        th = self.th
        self.window = th.bad_route_ref_window_s
        self._thresholds = explain_text({"min_pct": th.bad_route_min_pct, "min_usd": th.bad_route_min_usd,
                                         "ref_window_s": self.window, "min_ref_ticks": th.bad_route_min_ref_ticks})
        self.pending: dict[str, _Pending] = {}
        self.by_mint: dict[str, list[tuple[int, int, str]]] = {}  # mint -> heap (t, seq, key)
        self.buffers: dict[str, deque[Tick]] = {}
        self.awaiting: dict[str, None] = {}  # mints whose history has been asked for
        self.timers = TimerQueue()
        self.seq = 0

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(pct * 10)

    def on_trade(self, leg: Leg) -> list[Moment]:
        if not leg.judged or leg.price_usd is None:
            return []
        key = f"{leg.wallet}|{leg.mint}|{leg.signature}"
        if key in self.pending:
            return []
        mint = leg.mint
        self.pending[key] = _Pending(key, leg)
        self.seq += 1
        heap = self.by_mint.get(mint)
        if heap is None:
            heap = self.by_mint[mint] = []
            self.buffers[mint] = deque()
            self.awaiting[mint] = None
            self.ctx.watch(mint)
            self.ctx.request_history(mint)
        heapq.heappush(heap, (leg.time, self.seq, key))
        self.timers.push(leg.time + self.window, key)
        return []

    def on_history(self, history: MintHistory) -> None:
        if history.mint in self.awaiting:
            del self.awaiting[history.mint]
            self.buffers[history.mint] = deque(history.ticks)

    def on_tick(self, ticks: SlotTicks) -> list[Moment]:
        buffer = self.buffers.get(ticks.mint)
        if buffer is not None:
            buffer.extend(ticks.ticks)
        return []

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        due = self.timers.pop_due(wm.time)
        if not due:
            return []
        out: list[Moment] = []
        for _, key in due:
            p = self.pending.pop(key, None)
            if p is None:
                continue
            moment = self._judge(p)
            if moment is not None:
                out.append(moment)
            self._trim(p.mint)
        return out

    def _judge(self, p: _Pending) -> Moment | None:
        th = self.th
        ref = reference_price(self.buffers[p.mint], p.t, p.wallet, self.window, th.bad_route_min_ref_ticks)
        if ref is None:
            return None
        p_ref = ref.price
        diff = p.p_exec - p_ref
        pct = (diff if p.buy else -diff) / p_ref
        usd = p.amount * abs(diff)
        if pct < th.bad_route_min_pct or usd < th.bad_route_min_usd:
            return None
        end = p.t + self.window
        return build_moment(
            MomentKind.BAD_ROUTE, mid=moment_id(MomentKind.BAD_ROUTE, p.wallet, p.mint, p.sig), wallet=p.wallet, mint=p.mint, sig_ref=p.sig, slot_ref=p.slot, pct=pct, usd=usd,
            severity=self.severity(pct, usd), window=(p.t - self.window, end), status=MomentStatus.FINAL,
            detected_at=end, updated_at=end, rule=RULE,
            inputs={"side": "BUY" if p.buy else "SELL", "amount": p.amount, "p_exec": p.p_exec, "p_ref": p_ref,
                    "ref_ticks": len(ref.prices), "ref_prices": [format(x, "f") for x in ref.prices], "t": p.t},
            thresholds=self._thresholds, state="judged",
        )

    def _trim(self, mint: str) -> None:
        heap = self.by_mint[mint]
        while heap and heap[0][2] not in self.pending:
            heapq.heappop(heap)
        if not heap:
            del self.by_mint[mint], self.buffers[mint]
            self.awaiting.pop(mint, None)
            self.ctx.unwatch(mint)
            return
        since = heap[0][0] - self.window
        buffer = self.buffers[mint]
        while buffer and buffer[0].block_time < since:
            buffer.popleft()

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": [p.to_list() for p in self.pending.values()],
            "by_mint": {m: [list(i) for i in h] for m, h in self.by_mint.items()},
            "buffers": {m: [encode_tick(t) for t in b] for m, b in self.buffers.items()},
            "awaiting": list(self.awaiting),
            "timers": self.timers.to_dict(),
            "seq": self.seq,
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.pending = {p[0]: _Pending.from_list(p) for p in d["pending"]}
        self.by_mint = {m: [(t, s, k) for t, s, k in h] for m, h in d["by_mint"].items()}
        self.buffers = {m: deque(decode_tick(t) for t in b) for m, b in d["buffers"].items()}
        self.awaiting = dict.fromkeys(d["awaiting"])
        self.timers = TimerQueue.from_dict(d["timers"])
        self.seq = d["seq"]

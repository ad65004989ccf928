"""BAD_ROUTE — a swap executed well off the price everyone else got around the same time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from core.detectors.base import (
    Detector,
    Leg,
    LegRole,
    ShardContext,
    build_moment,
    clamp01,
    decimal_text,
    explain_text,
)
from core.models import Moment, MomentKind, MomentStatus, moment_id
from core.oracle import RefAnswer, Reference, RefRequest
from core.windows import Watermark

__all__ = ["BadRoute"]

_BUY: Final = LegRole.BUY
_new_tuple: Final = tuple.__new__  # RefRequest(...) without the NamedTuple keyword-parsing __new__

RULE = ("p_ref = median of other wallets' ticks within +/- window; pct = (p_exec - p_ref) / p_ref for a BUY, "
        "(p_ref - p_exec) / p_ref for a SELL; usd = amount * |p_exec - p_ref|")


class _Pending:
    __slots__ = ("key", "wallet", "mint", "sig", "slot", "t", "buy", "amount", "p_exec")

    def __init__(self, key: str, wallet: str, mint: str, sig: str, slot: int, t: int, buy: bool, amount: Decimal,
                 p_exec: Decimal) -> None:
        self.key, self.wallet, self.mint, self.sig, self.slot, self.t = key, wallet, mint, sig, slot, t
        self.buy, self.amount, self.p_exec = buy, amount, p_exec

    def to_list(self) -> list[Any]:
        return [self.key, self.wallet, self.mint, self.sig, self.slot, self.t, self.buy, str(self.amount),
                str(self.p_exec)]

    @staticmethod
    def from_list(d: list[Any]) -> _Pending:
        key, wallet, mint, sig, slot, t, buy, amount, p_exec = d
        return _Pending(key, wallet, mint, sig, slot, t, buy, Decimal(amount), Decimal(p_exec))


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

    The reference comes from the price side: each trade leg asks for one
    (`ShardContext.reference_requests`), the `PriceBook` answers when its watermark passes
    `t + window` (`on_reference`), and the judgement follows on that same watermark.
    A BUY worth less than `bad_route_min_usd` can never qualify (usd <= amount * p_exec)
    and is not asked about.
    """

    kind = MomentKind.BAD_ROUTE
    roles = frozenset({LegRole.BUY, LegRole.SELL})

    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        th = self.th
        self.window = th.bad_route_ref_window_s
        self._min_usd = th.bad_route_min_usd
        self._thresholds = explain_text({"min_pct": th.bad_route_min_pct, "min_usd": th.bad_route_min_usd,
                                         "ref_window_s": self.window, "min_ref_ticks": th.bad_route_min_ref_ticks})
        self.pending: dict[str, _Pending] = {}
        self.answered: list[tuple[str, Reference | None]] = []

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(pct * 10)

    def on_trade(self, leg: Leg) -> list[Moment]:
        price = leg.price_usd
        if not leg.judged or price is None:
            return []
        if leg.role is _BUY and leg.amount * price < self._min_usd:
            return []
        wallet, mint = leg.wallet, leg.mint
        key = f"{wallet}|{mint}|{leg.signature}"
        pending = self.pending
        if key not in pending:
            pending[key] = _Pending(key, wallet, mint, leg.signature, leg.slot, leg.time, leg.role is _BUY,
                                    leg.amount, price)
            ctx = self.ctx
            ctx.reference_requests.append(_new_tuple(RefRequest, (ctx.shard_id, key, mint, leg.time, wallet)))
        return []

    def on_reference(self, answer: RefAnswer) -> None:
        _, key, reference = answer  # RefAnswer (NamedTuple attribute reads are slow in 3.11)
        if key in self.pending:
            self.answered.append((key, reference))

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        if not self.answered:
            return []
        out: list[Moment] = []
        for key, reference in self.answered:
            p = self.pending.pop(key, None)
            if p is not None and reference is not None:
                moment = self._judge(p, reference)
                if moment is not None:
                    out.append(moment)
        self.answered.clear()
        return out

    def _judge(self, p: _Pending, ref: Reference) -> Moment | None:
        th = self.th
        p_ref = ref.price
        diff = p.p_exec - p_ref
        pct = (diff if p.buy else -diff) / p_ref
        usd = p.amount * abs(diff)
        if pct < th.bad_route_min_pct or usd < th.bad_route_min_usd:
            return None
        end = p.t + self.window
        return build_moment(
            MomentKind.BAD_ROUTE, mid=moment_id(MomentKind.BAD_ROUTE, p.wallet, p.mint, p.sig), wallet=p.wallet,
            mint=p.mint, sig_ref=p.sig, slot_ref=p.slot, pct=pct, usd=usd, severity=self.severity(pct, usd),
            window=(p.t - self.window, end), status=MomentStatus.FINAL, detected_at=end, updated_at=end, rule=RULE,
            inputs={"side": "BUY" if p.buy else "SELL", "amount": p.amount, "p_exec": p.p_exec, "p_ref": p_ref,
                    "ref_ticks": len(ref.prices), "ref_prices": [decimal_text(x) for x in ref.prices], "t": p.t},
            thresholds=self._thresholds, state="judged",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": [p.to_list() for p in self.pending.values()],
            "answered": [[k, None if r is None else [str(r.price), [str(x) for x in r.prices]]]
                         for k, r in self.answered],
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.pending = {p[0]: _Pending.from_list(p) for p in d["pending"]}
        self.answered = [(k, None if r is None else Reference(Decimal(r[0]), tuple(Decimal(x) for x in r[1])))
                         for k, r in d["answered"]]

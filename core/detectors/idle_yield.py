"""IDLE_YIELD — stakeable assets (SOL, USDC, USDT) left idle instead of earning yield."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.detectors.base import ZERO, Detector, Leg, ShardContext, build_moment, clamp01, explain_text
from core.mints import STABLECOINS
from core.models import Moment, MomentKind, MomentStatus
from core.windows import TimerQueue, Watermark

__all__ = ["IdleYield"]

DAY = 86_400
_DAYS_PER_YEAR = Decimal(365)
_SEVERITY_USD = Decimal(1000)
RULE = ("usd = sum over the period's days of (time-weighted mean balance that day) * (price at the day's end) "
        "* APR / 365; pct = usd / mean daily idle USD balance")


class _Asset:
    """Running idle accumulators of one asset of one wallet."""

    __slots__ = ("amount", "amount_s", "since", "usd", "usd_days", "priced_days", "unpriced_days")

    def __init__(self, since: int) -> None:
        self.amount = ZERO  # current balance
        self.amount_s = ZERO  # amount-seconds accumulated in the current day
        self.since = since  # last time `amount_s` was brought up to date
        self.usd = ZERO  # missed yield so far in the period
        self.usd_days = ZERO  # sum of daily idle USD balances in the period
        self.priced_days = 0
        self.unpriced_days = 0  # days with a balance but no price (SOL before its first tick)

    def to_list(self) -> list[Any]:
        return [str(self.amount), str(self.amount_s), self.since, str(self.usd), str(self.usd_days),
                self.priced_days, self.unpriced_days]

    @classmethod
    def from_list(cls, d: list[Any]) -> _Asset:
        a = cls(d[2])
        a.amount, a.amount_s, a.usd, a.usd_days = Decimal(d[0]), Decimal(d[1]), Decimal(d[3]), Decimal(d[4])
        a.priced_days, a.unpriced_days = d[5], d[6]
        return a


class _Account:
    __slots__ = ("period_start", "period_end", "day_end", "assets")

    def __init__(self, first_seen: int, period_s: int) -> None:
        self.period_start = first_seen
        self.period_end = first_seen + period_s
        self.day_end = first_seen + DAY
        self.assets: dict[str, _Asset] = {}


class IdleYield(Detector):
    """IDLE_YIELD — per wallet and stakeable asset (the keys of `idle_apr`), per 30-day
    period counted from the wallet's first transaction (`[first_seen + k*P, first_seen + (k+1)*P)`).

    Every day of event time (a daily timer on the watermark) the asset's time-weighted
    mean balance that day is valued at its price at the day's end (USDC/USDT $1, SOL its
    latest tick from SOL↔stablecoin swaps; a day with a balance but no SOL price yet
    counts $0 and is reported in `unpriced_days`):

    usd  = sum over the period's days of daily_idle_usd * APR / 365
    pct  = usd / mean daily_idle_usd over the priced days (the yield rate missed)
    emit usd >= idle_min_usd, `final`, when the period closes on the watermark
         (`mint` = the asset, `sig_ref` = f"idle:{wallet}:{period_start}")
    severity = min(1, usd / 1000)   (pct is nearly constant here, so severity follows usd)

    Balances are what the stream has shown since the wallet was first seen (its FIFO
    lots), so holdings from before the first transaction are not counted. A period
    that has not closed when the input ends emits nothing.
    """

    kind = MomentKind.IDLE_YIELD

    def __init__(self, ctx: ShardContext) -> None:
        super().__init__(ctx)
        self.apr = dict(self.th.idle_apr)
        self.period_s = self.th.idle_period_days * DAY
        self.accounts: dict[str, _Account] = {}
        self.timers = TimerQueue()

    @staticmethod
    def severity(pct: Decimal, usd: Decimal) -> Decimal:
        return clamp01(usd / _SEVERITY_USD)

    def on_seen(self, wallet: str, slot: int, time: int) -> list[Moment]:
        if wallet in self.accounts:
            return []
        if not self.accounts:  # non-stable assets (SOL) are valued at their latest price
            for mint in self.apr:
                if mint not in STABLECOINS:
                    self.ctx.watch(mint)
        account = self.accounts[wallet] = _Account(time, self.period_s)
        self.timers.push(account.day_end, wallet)
        return []

    def on_trade(self, leg: Leg) -> list[Moment]:
        mint = leg.mint
        if mint not in self.apr:
            return []
        wallet, time = leg.wallet, leg.time
        assets = self.accounts[wallet].assets
        asset = assets.get(mint)
        if asset is None:
            asset = assets[mint] = _Asset(time)
        elif time > asset.since:
            asset.amount_s += asset.amount * (time - asset.since)
            asset.since = time
        asset.amount = self.ctx.positions.balance(wallet, mint)
        return []

    def on_watermark(self, wm: Watermark) -> list[Moment]:
        heap = self.timers._heap  # peek without a call: this runs every slot
        if not heap or heap[0][0] > wm.time:
            return []
        due = self.timers.pop_due(wm.time, strict=False)
        if not due:
            return []
        out: list[Moment] = []
        for _, wallet in due:
            account = self.accounts[wallet]
            while account.day_end <= wm.time:
                self._close_day(wallet, account, out)
            self.timers.push(account.day_end, wallet)
        return out

    def _close_day(self, wallet: str, account: _Account, out: list[Moment]) -> None:
        end = account.day_end
        for mint, a in account.assets.items():
            if end > a.since:
                a.amount_s += a.amount * (end - a.since)
                a.since = end
            if a.amount_s:
                price = self.ctx.price(mint)
                if price is None:
                    a.unpriced_days += 1
                else:
                    daily = a.amount_s / DAY * price
                    a.usd_days += daily
                    a.usd += daily * self.apr[mint] / _DAYS_PER_YEAR
                    a.priced_days += 1
                a.amount_s = ZERO
        account.day_end = end + DAY
        if end < account.period_end:
            return
        for mint, a in list(account.assets.items()):
            if a.usd >= self.th.idle_min_usd:
                out.append(self._moment(wallet, mint, a, account, end))
            a.usd, a.usd_days, a.priced_days, a.unpriced_days = ZERO, ZERO, 0, 0
            if not a.amount:
                del account.assets[mint]
        account.period_start, account.period_end = end, end + self.period_s

    def _moment(self, wallet: str, mint: str, a: _Asset, account: _Account, end: int) -> Moment:
        th = self.th
        mean = a.usd_days / a.priced_days if a.priced_days else ZERO
        pct = a.usd / mean if mean else ZERO
        return build_moment(
            MomentKind.IDLE_YIELD, wallet=wallet, mint=mint, sig_ref=f"idle:{wallet}:{account.period_start}",
            slot_ref=self.ctx.watermark.slot, pct=pct, usd=a.usd, severity=self.severity(pct, a.usd),
            window=(account.period_start, end), status=MomentStatus.FINAL, detected_at=end, updated_at=end,
            rule=RULE,
            inputs={"apr": self.apr[mint], "days": th.idle_period_days, "priced_days": a.priced_days,
                    "unpriced_days": a.unpriced_days, "sum_daily_idle_usd": a.usd_days, "mean_idle_usd": mean,
                    "balance_at_end": a.amount},
            thresholds=explain_text({"min_usd": th.idle_min_usd, "period_days": th.idle_period_days,
                                     "apr": self.apr[mint]}),
            state="period_closed",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounts": {
                w: [a.period_start, a.period_end, a.day_end, {m: s.to_list() for m, s in a.assets.items()}]
                for w, a in self.accounts.items()
            },
            "timers": self.timers.to_dict(),
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.accounts = {}
        for wallet, (start, end, day_end, assets) in d["accounts"].items():
            account = _Account(start, self.period_s)
            account.period_end, account.day_end = end, day_end
            account.assets = {m: _Asset.from_list(s) for m, s in assets.items()}
            self.accounts[wallet] = account
        self.timers = TimerQueue.from_dict(d["timers"])

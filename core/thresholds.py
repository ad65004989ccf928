"""Detector thresholds and formula constants (DESIGN "Detector semantics" defaults).

Grouped in one frozen model so a shard receives exactly one value object; settings
load it from `thresholds:` in configs/*.yaml or `OOF_THRESHOLDS__<FIELD>` variables.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from core.mints import SOL_MINT, USDC_MINT, USDT_MINT

__all__ = ["Thresholds"]

DAY = 86_400


class Thresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    s2e_min_pct: Decimal = Field(Decimal("0.25"), description="S2E: (peak - exit) / exit at least this")
    s2e_min_usd: Decimal = Field(Decimal("25"), description="S2E: q * (peak - exit) at least this many USD")
    s2e_window_s: int = Field(7 * DAY, gt=0, description="S2E: look for the peak in (t, t + window]")

    bhd_max_pct: Decimal = Field(Decimal("-0.30"), description="BHD: (trough - entry) / entry at most this")
    bhd_min_usd: Decimal = Field(Decimal("25"), description="BHD: held * (entry - trough) at least this")
    bhd_window_s: int = Field(7 * DAY, gt=0, description="BHD: look for the trough in (t, t + window]")

    bad_route_min_pct: Decimal = Field(Decimal("0.01"), description="BAD_ROUTE: price worse than reference by at least this")
    bad_route_min_usd: Decimal = Field(Decimal("5"), description="BAD_ROUTE: amount * |exec - ref| at least this")
    bad_route_ref_window_s: int = Field(60, gt=0, description="BAD_ROUTE: reference ticks within +/- this many seconds")
    bad_route_min_ref_ticks: int = Field(3, ge=1, description="BAD_ROUTE: no judgement with fewer reference ticks")

    idle_period_days: int = Field(30, gt=0, description="IDLE_YIELD: length of one idle period")
    idle_min_usd: Decimal = Field(Decimal("10"), description="IDLE_YIELD: missed yield at least this")
    idle_apr: dict[str, Decimal] = Field(
        default_factory=lambda: {SOL_MINT: Decimal("0.07"), USDC_MINT: Decimal("0.05"), USDT_MINT: Decimal("0.05")},
        description="IDLE_YIELD: APR per stakeable mint",
    )

    rug_max_pct: Decimal = Field(Decimal("-0.80"), description="RUG: (now - high) / high at most this")
    rug_confirm_s: int = Field(DAY, gt=0, description="RUG: still collapsed after this much event time")
    rug_min_cost_usd: Decimal = Field(Decimal("25"), description="RUG: cost basis still held at least this")

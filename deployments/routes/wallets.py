"""`GET /v1/wallets/{wallet}/summary`: counts and USD by kind, the worst moment, the OOF score.

**OOF score** (0..100, higher = costlier mistakes). Each moment *i* has an impact

    impact_i = severity_i × min(1, log10(1 + usd_value_i) / 4)

(USD weighs in logarithmically and saturates at $9,999: a $0 moment has no impact, a $99 one
half its severity, a $10k one all of it). The score is the chance that "at least one
mistake hurt", treating impacts as independent:

    score = 100 × (1 − Π_i (1 − impact_i))

0 with no moments, monotone in every severity and USD value, and it approaches 100 as
costly mistakes accumulate. (`impact` is capped at 0.999999 so the product stays positive.)

The summary is cached (`SUMMARY_TTL_S`, local + Redis, single-flight per replica): it may be
that many seconds behind the moments table. Authorization is checked before the cache.
"""

from __future__ import annotations

import time
from decimal import Decimal
from math import exp
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from core.codec import decimal_text, moment_to_dict
from core.models import MomentKind
from deployments.auth import Principal
from deployments.compose import Deps, get_deps
from deployments.middleware import ANY_CALLER, caller
from deployments.problems import problem_responses
from deployments.routes.moments import MomentOut, check_wallet, wallet_scope
from streams.storage.rows import MOMENT_COLUMNS, moment_from_row

__all__ = ["router", "WalletSummary", "KindSummary", "SUMMARY_TTL_S", "wallet_summary"]

router = APIRouter(prefix="/v1", tags=["wallets"])

SUMMARY_TTL_S = 30.0
_IMPACT_CAP = Decimal("0.999999")

_BY_KIND_SQL = f"""
SELECT kind, count(*) AS n, sum(usd_value) AS usd,
       sum(ln(1 - least({_IMPACT_CAP}, severity * least(1, log(1 + usd_value) / 4)))) AS log_keep
FROM moments WHERE wallet = $1 GROUP BY kind
"""
_WORST_SQL = f"""
SELECT {", ".join(MOMENT_COLUMNS)} FROM moments WHERE wallet = $1
ORDER BY severity DESC, usd_value DESC, id LIMIT 1
"""


class KindSummary(BaseModel):
    kind: MomentKind
    count: int
    usd_value: str = Field(json_schema_extra={"format": "decimal"}, description="USD missed, exact decimal")


class WalletSummary(BaseModel):
    wallet: str
    moments: int
    usd_value: str = Field(json_schema_extra={"format": "decimal"}, description="total USD missed")
    by_kind: list[KindSummary] = Field(description="every kind, zeros included")
    worst_moment: MomentOut | None = Field(description="the most severe moment (a `MomentOut`), null when none")
    oof_score: float = Field(ge=0, le=100, description="100 × (1 − Π(1 − severity·min(1, log10(1+usd)/4)))")
    computed_at: int = Field(description="unix seconds when this summary was computed (it is cached)")


async def wallet_summary(deps: Deps, wallet: str) -> dict:
    """The summary as JSON-able data (what the cache stores)."""
    async with deps.connection("wallet_summary") as conn:
        rows = await conn.fetch(_BY_KIND_SQL, wallet)
        worst = await conn.fetchrow(_WORST_SQL, wallet)
    found = {row["kind"]: row for row in rows}
    by_kind = [
        {
            "kind": kind.value,
            "count": int(found[kind.value]["n"]) if kind.value in found else 0,
            "usd_value": decimal_text(found[kind.value]["usd"]) if kind.value in found else "0",
        }
        for kind in MomentKind
    ]
    log_keep = sum((row["log_keep"] for row in rows), Decimal(0))
    return {
        "wallet": wallet,
        "moments": sum(entry["count"] for entry in by_kind),
        "usd_value": decimal_text(sum((row["usd"] for row in rows), Decimal(0))),
        "by_kind": by_kind,
        "worst_moment": None if worst is None else moment_to_dict(moment_from_row(worst)),
        "oof_score": round(100 * (1 - exp(float(log_keep))), 2),
        "computed_at": int(time.time()),
    }


@router.get(
    "/wallets/{wallet}/summary",
    response_model=WalletSummary,
    summary="Counts and USD by kind, the worst moment and the OOF score of one wallet",
    responses=problem_responses(401, 403, 422, 429),
    openapi_extra=ANY_CALLER,
)
async def wallet_summary_route(
    wallet: Annotated[str, Path(max_length=64, description="base58 address")],
    principal: Annotated[Principal, Depends(caller)],
    deps: Annotated[Deps, Depends(get_deps)],
) -> WalletSummary:
    check_wallet(wallet, "path.wallet")
    await wallet_scope(deps, principal, wallet)
    data = await deps.cache.get_or_compute(
        f"wallet-summary:v1:{wallet}", SUMMARY_TTL_S, lambda: wallet_summary(deps, wallet)
    )
    return WalletSummary.model_validate(data)

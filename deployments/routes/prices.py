"""`GET /v1/prices?mints=a,b`: what OOF knows of some mints' USD prices, cached.

Per mint, two independent readings:

- `stream`: the close of the latest one-minute candle the pipeline stored (every priced
  swap in the stream, Jupiter's polled prices included) — the price the detectors saw,
  with its minute and last slot;
- `jupiter`: Jupiter Price v3 now, when `jupiter.enabled` (one upstream call for the whole
  set; Jupiter counts every request against one per-account budget). `jupiter_status`
  says `ok`, `disabled` or `unavailable` (the call failed: the stream prices still answer).

The answer for a set of mints is cached for `PRICES_TTL_S` (local + Redis, single flight
per replica), so a burst of clients costs the database and Jupiter one call per set.
"""

from __future__ import annotations

import hashlib
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from core.codec import decimal_text
from core.errors import ExternalServiceError, FieldError, ValidationError
from deployments.auth import Principal
from deployments.compose import Deps, get_deps
from deployments.middleware import ANY_CALLER, caller
from deployments.problems import problem_responses
from deployments.routes.moments import check_wallet

__all__ = ["router", "PricesOut", "PRICES_TTL_S", "MAX_MINTS", "current_prices"]

router = APIRouter(prefix="/v1", tags=["prices"])

PRICES_TTL_S = 10.0
MAX_MINTS = 50  # one Jupiter request's worth

_LATEST_SQL = """
SELECT DISTINCT ON (mint) mint, minute, close, last_slot FROM price_candles
WHERE mint = ANY($1::text[]) ORDER BY mint, minute DESC
"""


class StreamPrice(BaseModel):
    usd_price: str = Field(json_schema_extra={"format": "decimal"}, description="close of the latest stored minute")
    minute: int = Field(description="unix seconds of that candle's minute")
    last_slot: int = Field(description="the slot of its last tick")


class JupiterPriceOut(BaseModel):
    usd_price: str = Field(json_schema_extra={"format": "decimal"})
    block_id: int | None = Field(description="the slot Jupiter priced it at")


class MintPrice(BaseModel):
    mint: str
    stream: StreamPrice | None = Field(description="null: no swap of this mint was seen")
    jupiter: JupiterPriceOut | None = Field(description="null: Jupiter has no price, or was not asked")


class PricesOut(BaseModel):
    prices: list[MintPrice] = Field(description="one entry per asked mint, in the order asked")
    jupiter_status: Literal["ok", "disabled", "unavailable"]
    computed_at: int = Field(description="unix seconds when this answer was computed (it is cached)")


def parse_mints(text: str) -> list[str]:
    mints = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not mints:
        raise ValidationError([FieldError("query.mints", "names no mint")])
    if len(mints) > MAX_MINTS:
        raise ValidationError([FieldError("query.mints", f"names {len(mints)} mints; at most {MAX_MINTS}")])
    for i, mint in enumerate(mints):
        check_wallet(mint, f"query.mints[{i}]")
    return mints


async def current_prices(deps: Deps, mints: list[str]) -> dict[str, Any]:
    """The answer as JSON-able data (what the cache stores)."""
    async with deps.connection("latest_prices") as conn:
        rows = {r["mint"]: r for r in await conn.fetch(_LATEST_SQL, mints)}
    jupiter: dict[str, Any] = {}
    status = "disabled"
    if deps.jupiter is not None:
        try:
            with deps.metrics.external_timer("jupiter"):
                jupiter = await deps.jupiter.prices(mints)
            status = "ok"
        except ExternalServiceError:
            status = "unavailable"  # (logged by the client; the stream's prices still answer)
    prices = []
    for mint in mints:
        row, quote = rows.get(mint), jupiter.get(mint)
        prices.append({
            "mint": mint,
            "stream": None if row is None else {"usd_price": decimal_text(row["close"]),
                                                "minute": int(row["minute"].timestamp()), "last_slot": row["last_slot"]},
            "jupiter": None if quote is None else {"usd_price": decimal_text(quote.usd_price),
                                                   "block_id": quote.block_id},
        })
    return {"prices": prices, "jupiter_status": status, "computed_at": int(time.time())}


@router.get(
    "/prices",
    response_model=PricesOut,
    summary="USD prices of up to 50 mints: the pipeline's latest candle and Jupiter's current price",
    responses=problem_responses(401, 422, 429),
    openapi_extra=ANY_CALLER,
)
async def prices_route(
    mints: Annotated[str, Query(max_length=50 * 45, description="comma-separated base58 mint addresses, at most 50")],
    principal: Annotated[Principal, Depends(caller)],
    deps: Annotated[Deps, Depends(get_deps)],
) -> PricesOut:
    asked = parse_mints(mints)
    key = hashlib.blake2b(",".join(sorted(asked)).encode(), digest_size=16).hexdigest()
    data = await deps.cache.get_or_compute(f"prices:v1:{key}", PRICES_TTL_S, lambda: current_prices(deps, asked))
    by_mint = {entry["mint"]: entry for entry in data["prices"]}  # the cached set may have been asked in another order
    return PricesOut.model_validate({**data, "prices": [by_mint[m] for m in asked]})


"""`GET /v2/moments`: the v1 listing plus aggregations, served side by side with /v1.

Same filters, cursor and visibility rules as `/v1/moments`; the response adds, over the
*whole* filtered set (not just the page, and ignoring the cursor), counts, USD and the
worst severity per kind, and per time bucket (`bucket=hour|day`, UTC) and kind. At most
`MAX_BUCKET_ROWS` bucket rows are returned, newest first (`truncated` says when more exist).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from core.codec import decimal_text
from core.models import MomentKind
from deployments.auth import Principal
from deployments.compose import Deps, get_deps
from deployments.middleware import ANY_CALLER, caller
from deployments.problems import problem_responses
from deployments.routes.moments import (
    DecimalText,
    MomentOut,
    MomentQuery,
    moment_out,
    moment_query,
    page_of_moments,
    wallet_scope,
)
from streams.storage.rows import to_timestamptz

__all__ = ["router", "KindAggregate", "BucketAggregate", "Aggregations", "MomentAnalyticsPage", "MAX_BUCKET_ROWS"]

router = APIRouter(prefix="/v2", tags=["v2"])

MAX_BUCKET_ROWS = 2000


class KindAggregate(BaseModel):
    kind: MomentKind
    count: int
    usd_value: DecimalText
    max_severity: DecimalText


class BucketAggregate(BaseModel):
    bucket_start: int = Field(description="unix seconds, start of the UTC hour/day")
    kind: MomentKind
    count: int
    usd_value: DecimalText


class Aggregations(BaseModel):
    bucket: Literal["hour", "day"]
    total: int
    usd_value: DecimalText
    by_kind: list[KindAggregate]
    by_bucket: list[BucketAggregate]
    truncated: bool = Field(description="true when older buckets were left out")


class MomentAnalyticsPage(BaseModel):
    items: list[MomentOut]
    next_cursor: str | None
    aggregations: Aggregations


def _where(query: MomentQuery, wallets: Sequence[str] | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    args: list[object] = []

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if wallets is not None:
        clauses.append(f"wallet = ANY({arg(list(wallets))}::text[])")
    elif query.wallet is not None:
        clauses.append(f"wallet = {arg(query.wallet)}")
    if query.kinds is not None:
        clauses.append(f"kind = ANY({arg([k.value for k in query.kinds])}::text[])")
    if query.since is not None:
        clauses.append(f"detected_at >= {arg(to_timestamptz(query.since))}")
    if query.until is not None:
        clauses.append(f"detected_at < {arg(to_timestamptz(query.until))}")
    if query.min_severity is not None:
        clauses.append(f"severity >= {arg(query.min_severity)}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


async def _aggregate(deps: Deps, query: MomentQuery, wallets: Sequence[str] | None, bucket: str) -> Aggregations:
    where, args = _where(query, wallets)
    args.append(bucket)
    sql = (
        f"SELECT kind, date_trunc(${len(args)}, detected_at, 'UTC') AS bucket_start, count(*) AS n,"
        f" sum(usd_value) AS usd, max(severity) AS worst FROM moments{where}"
        f" GROUP BY kind, bucket_start ORDER BY bucket_start DESC, kind"
    )
    async with deps.connection("moment_aggregates") as conn:
        rows = await conn.fetch(sql, *args)
    kinds: dict[str, dict[str, Decimal | int]] = {}
    for row in rows:
        entry = kinds.setdefault(row["kind"], {"count": 0, "usd": Decimal(0), "worst": Decimal(0)})
        entry["count"] += row["n"]
        entry["usd"] += row["usd"]
        entry["worst"] = max(entry["worst"], row["worst"])
    return Aggregations(
        bucket=bucket,  # type: ignore[arg-type]
        total=sum(int(e["count"]) for e in kinds.values()),
        usd_value=decimal_text(sum((Decimal(e["usd"]) for e in kinds.values()), Decimal(0))),
        by_kind=[
            KindAggregate(kind=kind, count=int(e["count"]), usd_value=decimal_text(Decimal(e["usd"])),
                          max_severity=decimal_text(Decimal(e["worst"])))
            for kind in MomentKind if (e := kinds.get(kind.value))
        ],
        by_bucket=[
            BucketAggregate(bucket_start=int(row["bucket_start"].timestamp()), kind=row["kind"], count=row["n"],
                            usd_value=decimal_text(row["usd"]))
            for row in rows[:MAX_BUCKET_ROWS]
        ],
        truncated=len(rows) > MAX_BUCKET_ROWS,
    )


@router.get(
    "/moments",
    response_model=MomentAnalyticsPage,
    summary="List moments with aggregations by kind and time bucket",
    responses=problem_responses(401, 403, 422, 429),
    openapi_extra=ANY_CALLER,
)
async def list_moments_v2(
    query: Annotated[MomentQuery, Depends(moment_query)],
    principal: Annotated[Principal, Depends(caller)],
    deps: Annotated[Deps, Depends(get_deps)],
    bucket: Annotated[Literal["hour", "day"], Query(description="time bucket of `by_bucket`, UTC")] = "day",
) -> MomentAnalyticsPage:
    wallets = await wallet_scope(deps, principal, query.wallet)
    if wallets is not None and not wallets:
        empty = Aggregations(bucket=bucket, total=0, usd_value="0", by_kind=[], by_bucket=[], truncated=False)
        return MomentAnalyticsPage(items=[], next_cursor=None, aggregations=empty)
    page, next_cursor = await page_of_moments(deps, query, wallets)
    aggregations = await _aggregate(deps, query, wallets, bucket)
    return MomentAnalyticsPage(items=[moment_out(m) for m in page], next_cursor=next_cursor, aggregations=aggregations)

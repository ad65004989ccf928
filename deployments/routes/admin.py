"""`GET /v1/admin/checkpoints`: the pipeline's stored state per layout, for operators (services only).

What the shard, price and ingest actors last checkpointed to PostgreSQL (`shard_checkpoints`,
keys decoded by `actors.config.checkpoint_kind`): per layout (shard count × price actors)
each part's last slot, barrier tag and age, and whether the set is complete — the set a
restart of that layout would resume from. A layout change starts fresh (README), so an old
layout's rows show here until they are deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from actors.config import checkpoint_kind
from deployments.auth import Principal
from deployments.compose import Deps, get_deps
from deployments.middleware import SERVICES_ONLY, service_caller
from deployments.problems import problem_responses

__all__ = ["router", "CheckpointsOut"]

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_SQL = """
SELECT shard_count, shard, last_slot, last_signature AS tag, updated_at, now() AS db_now
FROM shard_checkpoints ORDER BY shard_count, shard
"""


class PartCheckpoint(BaseModel):
    kind: Literal["ingest", "prices", "shard"]
    index: int = Field(description="shard j / price actor k (0 for the ingest)")
    last_slot: int
    tag: str | None = Field(description="the barrier this snapshot belongs to")
    updated_at: datetime
    age_s: float


class LayoutCheckpoints(BaseModel):
    shards: int
    price_actors: int | None = Field(description="null when only shard rows of this shard count exist")
    complete: bool = Field(description="ingest + every price actor + every shard, all of one barrier")
    last_slot: int | None = Field(description="the ingest's slot: where a restart resumes")
    parts: list[PartCheckpoint]


class CheckpointsOut(BaseModel):
    layouts: list[LayoutCheckpoints]


@router.get(
    "/checkpoints",
    response_model=CheckpointsOut,
    summary="The pipeline's stored checkpoints per layout: slots, barrier tags, ages (service callers only)",
    responses=problem_responses(401, 403, 429),
    openapi_extra=SERVICES_ONLY,
)
async def checkpoints_route(
    _: Annotated[Principal, Depends(service_caller)], deps: Annotated[Deps, Depends(get_deps)]
) -> CheckpointsOut:
    async with deps.connection("admin_checkpoints") as conn:
        rows = await conn.fetch(_SQL)
    shard_rows: dict[int, list[PartCheckpoint]] = {}
    layouts: dict[tuple[int, int], list[PartCheckpoint]] = {}
    for row in rows:
        kind, index, shards, prices = checkpoint_kind(row["shard_count"], row["shard"])
        part = PartCheckpoint(kind=kind, index=index, last_slot=row["last_slot"], tag=row["tag"],
                              updated_at=row["updated_at"],
                              age_s=round((row["db_now"] - row["updated_at"]).total_seconds(), 3))
        if prices is None:
            shard_rows.setdefault(shards, []).append(part)
        else:
            layouts.setdefault((shards, prices), []).append(part)
    out = []
    for (shards, prices), parts in sorted(layouts.items()):
        parts = [*parts, *shard_rows.get(shards, [])]  # shard rows are keyed by the shard count alone
        tags = {p.tag for p in parts}
        kinds = [p.kind for p in parts]
        complete = (kinds.count("ingest") == 1 and kinds.count("prices") == prices
                    and kinds.count("shard") == shards and len(tags) == 1)
        ingest = next((p for p in parts if p.kind == "ingest"), None)
        out.append(LayoutCheckpoints(shards=shards, price_actors=prices, complete=complete,
                                     last_slot=None if ingest is None else ingest.last_slot, parts=_ordered(parts)))
    claimed = {shards for shards, _ in layouts}
    for shards, parts in sorted(shard_rows.items()):
        if shards not in claimed:
            out.append(LayoutCheckpoints(shards=shards, price_actors=None, complete=False, last_slot=None,
                                         parts=_ordered(parts)))
    return CheckpointsOut(layouts=out)


def _ordered(parts: list[PartCheckpoint]) -> list[PartCheckpoint]:
    rank = {"ingest": 0, "prices": 1, "shard": 2}
    return sorted(parts, key=lambda p: (rank[p.kind], p.index))

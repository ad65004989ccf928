"""GET /v1/admin/checkpoints: the stored checkpoint sets per layout, for services only."""

from __future__ import annotations

from actors.config import PipelineConfig, checkpoint_id, checkpoint_kind
from streams.storage import save_checkpoint
from tests.unit.deployments.api.conftest import Api


def test_checkpoint_keys_decode_back_to_their_part_and_layout() -> None:
    config = PipelineConfig(shard_count=4, price_shards=2)
    assert checkpoint_kind(*checkpoint_id("ingest", 0, config)) == ("ingest", 0, 4, 2)
    assert checkpoint_kind(*checkpoint_id("prices", 1, config)) == ("prices", 1, 4, 2)
    assert checkpoint_kind(*checkpoint_id("shard", 3, config)) == ("shard", 3, 4, None)


async def _store(api: Api, config: PipelineConfig, tag: str, slot: int, *, skip_shard: int | None = None) -> None:
    keys = [checkpoint_id("ingest", 0, config), *[checkpoint_id("prices", k, config) for k in range(config.price_shards)],
            *[checkpoint_id("shard", j, config) for j in range(config.shard_count) if j != skip_shard]]
    async with api.deps.pool.acquire() as conn:
        for shard_count, shard in keys:
            await save_checkpoint(conn, shard, b"{}", slot, tag, shard_count=shard_count)


async def test_layouts_with_their_parts_slots_tags_and_completeness(clean: Api) -> None:
    async with clean.deps.pool.acquire() as conn:
        await conn.execute("TRUNCATE shard_checkpoints")
    try:
        await _store(clean, PipelineConfig(shard_count=2, price_shards=1), "run-a:7", 500)
        await _store(clean, PipelineConfig(shard_count=3, price_shards=2), "run-b:2", 90, skip_shard=1)
        response = await clean.get("/v1/admin/checkpoints", service=True)
    finally:  # fresh checkpoints would make the shared database's pipeline look healthy to other tests
        async with clean.deps.pool.acquire() as conn:
            await conn.execute("TRUNCATE shard_checkpoints")
    assert response.status_code == 200, response.text
    layouts = response.json()["layouts"]
    assert [(l["shards"], l["price_actors"], l["complete"], l["last_slot"]) for l in layouts] == [
        (2, 1, True, 500), (3, 2, False, 90)]
    first = layouts[0]["parts"]
    assert [(p["kind"], p["index"], p["last_slot"], p["tag"]) for p in first] == [
        ("ingest", 0, 500, "run-a:7"), ("prices", 0, 500, "run-a:7"), ("shard", 0, 500, "run-a:7"),
        ("shard", 1, 500, "run-a:7")]
    assert all(p["age_s"] >= 0 for p in first)
    assert [p["index"] for p in layouts[1]["parts"] if p["kind"] == "shard"] == [0, 2]  # shard 1 never stored


async def test_users_and_anonymous_callers_are_refused(clean: Api) -> None:
    assert (await clean.get("/v1/admin/checkpoints")).status_code == 401
    response = await clean.get("/v1/admin/checkpoints", user="some-user")
    assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json"

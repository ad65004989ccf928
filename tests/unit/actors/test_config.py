"""Actor names, options and checkpoint keys."""

from __future__ import annotations

from actors.config import PipelineConfig, actor_name, actor_options, checkpoint_id, cpu_share


def test_dashboard_names() -> None:
    assert [actor_name(k) for k in ("ingest", "fetch", "sink", "supervisor")] == [
        "oof:ingest", "oof:fetch", "oof:sink", "oof:supervisor"]
    assert actor_name("shard", 3) == "oof:shard-03" and actor_name("prices", 1) == "oof:prices-1"


def test_options_fit_the_cpu_budget_and_retry_only_idempotent_work() -> None:
    config = PipelineConfig(shard_count=6, price_shards=3, namespace="ns")
    kinds = [("supervisor", None), ("ingest", None), ("fetch", None), ("sink", None),
             *[("prices", k) for k in range(3)], *[("shard", j) for j in range(6)]]
    options = [actor_options(config, kind, index) for kind, index in kinds]
    assert sum(o["num_cpus"] for o in options) <= config.cpu_budget
    assert all(o["namespace"] == "ns" and o["max_restarts"] > 0 for o in options)
    retried = {o["name"] for o in options if o["max_task_retries"]}
    assert retried == {"oof:fetch", "oof:sink"}  # stateful batch calls are replayed by the ingest instead


def test_every_layout_fits_its_cpu_budget_at_rays_grain() -> None:
    for budget in (1.0, 0.5, 2.0):
        for shards in range(1, 65):
            for prices in range(1, 9):
                config = PipelineConfig(shard_count=shards, price_shards=prices, cpu_budget=budget)
                grains = round(cpu_share(config) * 10_000)  # Ray counts CPU in 0.0001 units
                assert 0 < grains * config.actor_count <= round(budget * 10_000), (budget, shards, prices)
                assert grains * config.actor_count > round(budget * 10_000) - config.actor_count  # nothing wasted


def test_checkpoint_keys_are_distinct_valid_rows_per_layout() -> None:
    a, b = PipelineConfig(shard_count=4, price_shards=2), PipelineConfig(shard_count=4, price_shards=3)
    keys = [checkpoint_id("ingest", 0, a), *[checkpoint_id("prices", k, a) for k in range(2)],
            *[checkpoint_id("shard", j, a) for j in range(4)]]
    assert len(set(keys)) == len(keys)
    assert all(0 <= shard < count for count, shard in keys)  # the table's CHECK constraint
    assert checkpoint_id("shard", 1, a) == (4, 1)  # shard rows keyed by the real shard count
    assert checkpoint_id("prices", 0, a) != checkpoint_id("prices", 0, b)  # another layout never reads it


def test_a_lane_names_its_actors_apart_and_can_skip_checkpoints() -> None:
    from actors.analyze import lane_config
    from core.settings import AnalyzeSettings

    live = PipelineConfig(shard_count=4, price_shards=2)
    lane = lane_config(live, AnalyzeSettings(shard_count=2, price_shards=1))
    assert (lane.shard_count, lane.price_shards, lane.lane) == (2, 1, "oof-analyze")
    assert not lane.checkpoints and not lane.resume and live.checkpoints
    assert actor_options(lane, "shard", 1)["name"] == "oof-analyze:shard-01"
    assert actor_options(lane, "ingest")["name"] == "oof-analyze:ingest"
    assert actor_options(live, "analyze")["name"] == "oof:analyze"

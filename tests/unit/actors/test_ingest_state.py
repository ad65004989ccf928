"""Where a (re)started ingest resumes: `IngestCheckpoints.load` over a stored checkpoint set.

With `resume` off (`oof run --fresh`) earlier runs' checkpoints are ignored, but a run's own
are not: the supervisor runs a crashed ingest again with the same run id, and it must go on
from that run's last barrier (starting over would resume a live source at the cursors that
barrier stored with every wallet's state forgotten, and store the candle partials twice).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from actors.assembler import SlotAssembler
from actors.config import PipelineConfig, checkpoint_id
from actors.ingest_state import IngestCheckpoints, LayoutChanged


class _Call:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def remote(self, *args: Any) -> Any:
        return self.answer(*args)


class _Sink:
    """The two `oof:sink` calls `load` makes, over `rows`: key -> (snapshot, last_slot, tag)."""

    def __init__(self, rows: dict[tuple[int, int], tuple[bytes, int, str]], layouts: list[tuple[int, int]]) -> None:
        self.load_checkpoints = _Call(lambda keys: {k: rows[k] for k in keys if k in rows})
        self.checkpoint_layouts = _Call(lambda: layouts)


def _stored(config: PipelineConfig, tag: str, number: int = 7) -> dict[tuple[int, int], tuple[bytes, int, str]]:
    ingest = orjson.dumps({"format": "oof-ingest", "number": number, "assembler": SlotAssembler().snapshot().decode()})
    rows = {checkpoint_id("ingest", 0, config): (ingest, 100, tag)}
    rows |= {checkpoint_id("prices", k, config): (b"prices-%d" % k, 100, tag) for k in range(config.price_shards)}
    rows |= {checkpoint_id("shard", j, config): (b"shard-%d" % j, 100, tag) for j in range(config.shard_count)}
    return rows


async def _load(config: PipelineConfig, rows: Any, run_id: str, layouts: Any = ()) -> int:
    state = IngestCheckpoints(config, _Sink(rows, list(layouts)), pump=None, cursors={}, run_id=run_id)  # type: ignore
    base = await state.load(SlotAssembler())
    return base.number


@pytest.mark.parametrize("resume", [True, False])
async def test_an_ingest_run_again_resumes_from_its_own_runs_checkpoint(resume: bool) -> None:
    config = PipelineConfig(shard_count=2, price_shards=1, dsn="postgresql://unused", resume=resume)
    assert await _load(config, _stored(config, "run-a:7"), run_id="run-a") == 7


async def test_resume_off_ignores_earlier_runs_checkpoints_and_layouts() -> None:
    config = PipelineConfig(shard_count=2, price_shards=1, dsn="postgresql://unused", resume=False)
    assert await _load(config, _stored(config, "run-a:7"), run_id="run-b") == 0
    assert await _load(config, {}, run_id="run-b", layouts=[(4, 2)]) == 0  # `--fresh` after re-sharding
    resumed = PipelineConfig(shard_count=2, price_shards=1, dsn="postgresql://unused")
    assert await _load(resumed, _stored(resumed, "run-a:7"), run_id="run-b") == 7
    with pytest.raises(LayoutChanged):
        await _load(resumed, {}, run_id="run-b", layouts=[(4, 2)])


async def test_an_incomplete_or_mixed_set_is_never_resumed() -> None:
    config = PipelineConfig(shard_count=2, price_shards=1, dsn="postgresql://unused", resume=False)
    rows = _stored(config, "run-a:7")
    rows[checkpoint_id("shard", 1, config)] = (b"shard-1", 90, "run-a:6")
    assert await _load(config, rows, run_id="run-a") == 0
    del rows[checkpoint_id("shard", 1, config)]
    assert await _load(config, rows, run_id="run-a") == 0

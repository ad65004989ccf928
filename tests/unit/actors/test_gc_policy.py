"""`actors.gc_policy`: the engine makes no garbage cycles, so freezing its survivors is safe."""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from core.engine import Engine
from actors.gc_policy import GcPolicy
from core.models import MomentKind
from deployments.commands.bench import synthetic_events
from tests.scenarios.make_demo import build_demo


@pytest.fixture
def collector_off() -> Iterator[Callable[[], Counter[str]]]:
    """Collector off; the callable collects and names the types of the cyclic garbage found."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # found cycles go to gc.garbage instead of being freed: we can name them

    def cycles() -> Counter[str]:
        gc.collect()
        found = Counter(type(o).__qualname__ for o in gc.garbage)
        gc.set_debug(0)  # now really free them (cleared from gc.garbage, they would still be cycles)
        gc.garbage.clear()
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        return found

    try:
        yield cycles
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()


def _run_and_round_trip(raws: list[dict[str, object]], traders: list[str]) -> tuple[list[object], list[Engine]]:
    """The upserts, and the engines: alive, as a process's engine is (RUG's watches and groups
    refer to each other, so a discarded engine is a cycle — once, at its end)."""
    engine, restored = Engine(tracked=traders), Engine(tracked=traders)
    upserts: list[object] = [*engine.process_batch(raws), *engine.flush()]
    restored.restore(engine.snapshot())
    return upserts, [engine, restored]


def test_the_demo_recording_through_the_engine_leaves_no_cycles(collector_off: Callable[[], Counter[str]]) -> None:
    world = build_demo()
    raws = world.raws()
    _run_and_round_trip(raws[:50], world.traders)  # first calls build caches once (pydantic, typing): not garbage
    collector_off()
    upserts, _alive = _run_and_round_trip(raws, world.traders)
    assert {m.kind for m in upserts} == set(MomentKind)  # type: ignore[attr-defined]  # every detector emitted
    assert collector_off() == Counter()


def test_a_synthetic_stream_in_shards_leaves_no_cycles(collector_off: Callable[[], Counter[str]]) -> None:
    events, traders = synthetic_events(6_000, 60, 12, seed=3, volatility=0.02)
    Engine(shard_count=3, tracked=traders).process_batch(events[:200])  # warm-up (see above)
    collector_off()
    engine = Engine(shard_count=3, tracked=traders)
    upserts = engine.process_batch(events) + engine.flush()
    assert upserts
    assert collector_off() == Counter()


def test_policy_freezes_survivors_and_collects_cycles_when_due() -> None:
    policy = GcPolicy(collect_every=1_000)
    was = gc.isenabled()
    try:
        policy.start()
        assert not gc.isenabled() and policy.active and policy.collections == 1
        frozen = gc.get_freeze_count()
        kept = [[i] for i in range(100)]  # survivors of a "batch"
        policy.after(10)
        assert gc.get_freeze_count() >= frozen + len(kept)
        assert gc.get_count()[0] < 100  # the young generation was emptied by the freeze, not scanned
        cycle: list[object] = []
        cycle.append(cycle)  # a cycle made outside the engine (asyncio, Ray) ...
        del cycle
        before = policy.collected
        policy.after(990)  # ... is reclaimed at the next full collection
        assert policy.collections == 2 and policy.collected > before and policy.since_collect == 0
    finally:
        policy.stop()
    assert gc.isenabled() == was and gc.get_freeze_count() == 0 and not policy.active


def test_policy_collects_fully_when_its_interval_has_passed_however_few_the_inputs() -> None:
    policy = GcPolicy(collect_every=10**9, max_interval_s=0.05)
    try:
        policy.start()
        policy.after(1)
        assert policy.collections == 1  # too soon
        time.sleep(0.06)
        policy.after(1)
        assert policy.collections == 2 and policy.since_collect == 0
    finally:
        policy.stop()


def test_policy_rejects_a_zero_period() -> None:
    with pytest.raises(ValueError, match="collect_every"):
        GcPolicy(collect_every=0)
    with pytest.raises(ValueError, match="max_interval_s"):
        GcPolicy(max_interval_s=0)

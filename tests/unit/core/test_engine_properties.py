"""Properties of the engine over random worlds and random trade streams (hypothesis)."""

from __future__ import annotations

import os
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine import Engine
from core.mints import USDC_MINT
from core.models import Moment, MomentKind, MomentStatus, Side, TradeEvent, moment_id
from core.thresholds import Thresholds
from tests.scenarios.random_world import random_world

# OOF_PROPERTY_EXAMPLES=500 for a deeper hunt; the default keeps the suite fast.
SETTINGS = settings(max_examples=int(os.environ.get("OOF_PROPERTY_EXAMPLES", "30")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(min_value=0, max_value=2**31)
TH = Thresholds()


def check_invariants(upserts: list[Moment]) -> None:
    finished: set[str] = set()
    for m in upserts:
        assert m.usd_value >= 0
        assert 0 <= m.severity <= 1
        assert m.id == moment_id(m.kind, m.wallet, m.mint, m.sig_ref)
        assert m.id not in finished, "a final moment was upserted again"
        assert m.detected_at <= m.updated_at
        if m.status is MomentStatus.FINAL:
            finished.add(m.id)
        if m.kind is MomentKind.S2E:
            assert m.pct >= TH.s2e_min_pct and m.usd_value >= TH.s2e_min_usd
        elif m.kind is MomentKind.BHD:
            assert m.pct <= TH.bhd_max_pct and m.usd_value >= TH.bhd_min_usd
        elif m.kind is MomentKind.BAD_ROUTE:
            assert m.status is MomentStatus.FINAL and m.pct >= TH.bad_route_min_pct
        elif m.kind is MomentKind.RUG and m.status is MomentStatus.FINAL:
            assert m.pct <= TH.rug_max_pct and m.explain["state"] == "confirmed"
        elif m.kind is MomentKind.IDLE_YIELD:
            assert m.status is MomentStatus.FINAL and m.usd_value >= TH.idle_min_usd


@SETTINGS
@given(seed=seeds)
def test_random_worlds_keep_the_invariants_and_replay_identically(seed: int) -> None:
    w = random_world(seed)
    first = w.run()
    check_invariants(first.upserts)
    assert w.run().upserts == first.upserts  # same input, fresh engine: same moments


@SETTINGS
@given(seed=seeds, shuffle=seeds)
def test_order_within_a_slot_does_not_matter(seed: int, shuffle: int) -> None:
    w = random_world(seed)
    assert w.run(shuffle_seed=shuffle).upserts == w.run().upserts


@SETTINGS
@given(seed=seeds, cut=st.floats(min_value=0, max_value=1))
def test_snapshot_restore_equals_an_uninterrupted_run(seed: int, cut: float) -> None:
    w = random_world(seed)
    raws = w.raws()
    at = int(cut * len(raws))
    first = Engine(tracked=w.traders)
    out = first.process_batch(raws[:at])
    second = Engine(tracked=w.traders)
    second.restore(first.snapshot())
    out += second.process_batch(raws[at:]) + second.flush()
    assert out == w.run().upserts


@SETTINGS
@given(seed=seeds)
def test_one_shard_equals_four(seed: int) -> None:
    w = random_world(seed, traders=5)
    assert w.run(shards=4).upserts == w.run(shards=1).upserts


decimals = st.decimals(min_value=D("0.000001"), max_value=D("1000000"), places=6, allow_nan=False,
                       allow_infinity=False).filter(lambda d: d > 0)
events = st.lists(
    st.tuples(st.sampled_from([0, 0, 1, 1, 30, 3_600, 86_400 * 3]), st.sampled_from(["w1", "w2", "w3", "m"]),
              st.sampled_from([Side.BUY, Side.SELL]), st.sampled_from(["A", "B"]), decimals, decimals),
    min_size=1, max_size=60)


@SETTINGS
@given(rows=events)
def test_extreme_trade_streams_keep_the_invariants(rows: list) -> None:
    slot, t, stream = 100, 1_750_000_000, []
    for i, (dt, wallet, side, mint, amount, price) in enumerate(rows):
        if dt:
            slot, t = slot + 1, t + dt
        quote = (amount * price).quantize(D("0.000001"))
        if quote <= 0:
            continue
        stream.append(TradeEvent(f"sig{i}", slot, t, 0, wallet, side, mint, amount, USDC_MINT, quote, quote / amount,
                                 None, 0))
    stream.append(TradeEvent("end", slot + 1, t + 40 * 86_400, 0, "m", Side.BUY, "A", D(1), USDC_MINT, D(1), D(1), None, 0))
    for shards in (1, 3):
        engine = Engine(shard_count=shards, tracked=["w1", "w2", "w3"])
        out = engine.process_batch(stream) + engine.flush()
        check_invariants(out)
        if shards == 1:
            reference = out
        else:
            assert out == reference


@SETTINGS
@given(seed=seeds, cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=6))
def test_coalesced_batches_reach_the_same_final_moments(seed: int, cuts: list[int]) -> None:
    """`process_batch(coalesce=True)`, however the stream is cut into batches: each batch one
    upsert per id (sorted by id), each moment's upserts a subsequence of the per-slot
    history ending in the same final state; and a snapshot between batches restores."""
    w = random_world(seed)
    per_slot = w.run().upserts
    raws = w.raws()
    bounds = sorted({0, len(raws), *(c for c in cuts if c < len(raws))})
    engine = Engine(TH, tracked=w.traders)
    got: list[Moment] = []
    for lo, hi in zip(bounds, bounds[1:]):
        batch = engine.process_batch(raws[lo:hi], coalesce=True)
        assert [m.id for m in batch] == sorted({m.id for m in batch})
        got += batch
        restored = Engine(TH, tracked=w.traders)
        restored.restore(engine.snapshot())  # nothing is left pending between batches
        engine = restored
    got += engine.flush()
    check_invariants(got)
    history: dict[str, list[Moment]] = {}
    for m in per_slot:
        history.setdefault(m.id, []).append(m)
    assert {m.id: m for m in got} == {m.id: m for m in per_slot}
    for m in got:
        states = history[m.id]
        assert m in states
        history[m.id] = states[states.index(m) + 1:]  # later upserts of an id come later in the history

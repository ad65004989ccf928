"""The in-process engine: dedup, canonical order within a slot, event time, checkpoints, shards."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.engine import Engine
from core.errors import ParseError
from core.mints import USDC_MINT
from core.models import MomentKind, MomentStatus, Side, TradeEvent
from tests.scenarios import DAY, World, shuffle_within_slots
from tests.scenarios.random_world import random_world

S2E = MomentKind.S2E


def crossed_world() -> tuple[World, str, str]:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    w.buy(alice, tok, 100, "1")
    w.wait(60)
    w.sell(alice, tok, 100, "1")
    w.wait(DAY)
    w.trade(tok, "2")
    return w, alice, tok


def test_the_same_transaction_twice_is_processed_once() -> None:
    w, alice, _ = crossed_world()
    raws = w.raws()
    doubled = [r for raw in raws for r in (raw, {"result": raw})]  # redelivered at once, other wrapping
    once, twice = Engine(tracked=[alice]), Engine(tracked=[alice])
    a = once.process_batch(raws) + once.flush()
    b = twice.process_batch(doubled + raws[:2]) + twice.flush()  # and again later, within the horizon
    assert a == b
    assert twice.stats.duplicates == len(raws) + 2


def test_events_older_than_the_dedup_horizon_are_dropped_as_stale() -> None:
    w, alice, _ = crossed_world()
    raws = w.raws()
    engine = Engine(tracked=[alice], dedup_slots=1)
    out = engine.process_batch(raws + raws[:1]) + engine.flush()
    assert engine.stats.stale == 1
    assert out == w.run().upserts


def test_the_dedup_horizon_holds_over_a_long_stream_and_a_checkpoint() -> None:
    """Keys expire slot by slot (the expired front of the key list is cut in bulk, here many
    times): a redelivery inside the horizon is a duplicate, one outside it is stale — before
    and after a snapshot/restore."""

    def event(i: int) -> TradeEvent:
        return TradeEvent(f"sig{i}", 1_000 + i, 1_700_000_000 + i, 0, "w", Side.BUY, "m", D(1), USDC_MINT, D(1),
                          D(1), None, 0)

    engine = Engine(tracked=["other"], dedup_slots=100)
    for i in range(20_000):
        engine.process(event(i))
        if i >= 50 and i % 7 == 0:
            engine.process(event(i - 50))  # within the horizon: a duplicate
        if i >= 150 and i % 11 == 0:
            engine.process(event(i - 150))  # beyond it: stale
    assert (engine.stats.duplicates, engine.stats.stale) == (len(range(56, 20_000, 7)), len(range(154, 20_000, 11)))
    restored = Engine(tracked=["other"], dedup_slots=100)
    restored.restore(engine.snapshot())
    assert len(restored._seen) == len(engine._seen) <= 102  # only the horizon's keys are kept
    restored.process(event(19_950))
    restored.process(event(19_800))
    assert (restored.stats.duplicates - engine.stats.duplicates, restored.stats.stale - engine.stats.stale) == (1, 1)


def test_a_new_event_for_an_already_run_slot_is_processed_late() -> None:
    w, alice, tok = crossed_world()
    late = TradeEvent("late-sig", w.txs[0].slot, w.txs[0].block_time, 0, w.market[1], Side.BUY, tok, D(1),
                      USDC_MINT, D(1), D(1), None, 0)
    engine = Engine(tracked=[alice])
    engine.process_batch(w.raws())
    engine.process(late)
    assert engine.stats.late == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrival_order_within_a_slot_does_not_matter(seed: int) -> None:
    w = random_world(seed)
    assert w.run(shuffle_seed=seed).upserts == w.run().upserts


def test_a_failed_transaction_moves_event_time_and_closes_windows() -> None:
    w, alice, _ = crossed_world()
    w.wait(7 * DAY)
    failed = w.heartbeat()
    assert failed.failed
    m = w.run().one(S2E, alice)
    assert m.status is MomentStatus.FINAL


def test_end_of_input_and_flush_close_nothing() -> None:
    w, alice, _ = crossed_world()
    engine = Engine(tracked=[alice])
    engine.process_batch(w.raws())
    out = engine.flush() + engine.flush()
    assert [m.status for m in out] == [MomentStatus.OPEN]


def test_a_heartbeat_moves_event_time_without_a_transaction() -> None:
    w, alice, _ = crossed_world()
    engine = Engine(tracked=[alice])
    engine.process_batch(w.raws())
    out = engine.advance(w.slot + 10, w.time + 8 * DAY)
    out += engine.flush()
    assert [(m.kind, m.status) for m in out] == [(S2E, MomentStatus.OPEN), (S2E, MomentStatus.FINAL)]


def test_untracked_wallets_make_ticks_but_no_moments() -> None:
    w, alice, tok = crossed_world()
    bob = w.wallet("bob")
    w.buy(bob, tok, 100, "2")
    w.wait(60)
    w.trade(tok, "1")
    run = w.run(tracked=[alice])
    assert {m.wallet for m in run.final.values()} == {alice}
    assert run.engine.stats.ticks == 5
    everyone = w.run(tracked=None)  # every fee payer, market wallets included
    assert bob in {m.wallet for m in everyone.final.values()}


def test_a_transfer_into_a_tracked_wallet_is_seen_although_someone_else_pays() -> None:
    w = World()
    alice = w.wallet("alice")
    w.deposit(alice, USDC_MINT, "5000")
    w.wait(31 * DAY)
    w.heartbeat()
    assert w.run(tracked=[alice]).one(MomentKind.IDLE_YIELD, alice).mint == USDC_MINT


def test_raw_parsed_and_expected_views_agree() -> None:
    w = random_world(5)
    assert w.run(via="parsed").upserts == w.run().upserts


def test_unreadable_raw_input_raises_parse_error_and_changes_nothing() -> None:
    engine = Engine()
    with pytest.raises(ParseError):
        engine.process({"result": {"slot": 1}})
    assert engine.stats.views == 0 and engine.watermark.slot == 0


@pytest.mark.parametrize("seed", [7, 8])
def test_snapshot_restore_continue_equals_an_uninterrupted_run(seed: int) -> None:
    w = random_world(seed)
    raws = w.raws()
    tracked = w.traders
    whole = w.run().upserts
    for cut in (1, len(raws) // 3, len(raws) // 2, len(raws) - 1):
        first = Engine(tracked=tracked)
        out = first.process_batch(raws[:cut])
        snap = first.snapshot()
        second = Engine(tracked=tracked)
        second.restore(snap)
        assert second.snapshot() == snap
        out += second.process_batch(raws[cut:]) + second.flush()
        assert out == whole, cut


def test_restore_refuses_a_different_shard_count() -> None:
    snap = Engine(shard_count=2).snapshot()
    with pytest.raises(ValueError):
        Engine(shard_count=3).restore(snap)
    with pytest.raises(ValueError):
        Engine().restore(b'{"format": "shard", "v": 1, "body": {}}')


@pytest.mark.parametrize("seed", [11, 12])
def test_one_shard_and_four_shards_give_the_same_moments(seed: int) -> None:
    w = random_world(seed, traders=6)
    assert w.run(shards=4).upserts == w.run(shards=1).upserts


def test_bare_trade_events_drive_the_engine_too() -> None:
    w, alice, _ = crossed_world()
    events = [t for p in w.parsed() for t in p.trades]
    engine = Engine(tracked=[alice])
    out = engine.process_batch(events) + engine.flush()
    assert [m.kind for m in out] == [S2E]
    shuffled = Engine(tracked=[alice])
    assert shuffled.process_batch(shuffle_within_slots(events, 3)) + shuffled.flush() == out

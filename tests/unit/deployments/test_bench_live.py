"""`oof bench live`: argument handling and the latency arithmetic (the bench itself is a command, not a test)."""

from __future__ import annotations

import argparse
import math

import pytest

from deployments.cli import main
from deployments.commands import bench_live
from deployments.commands.bench_live_stats import LatencyBook, parse_rates, percentile, summarize


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_live.add_parser(parser)
    return parser.parse_args(list(argv))


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))
    with pytest.raises(ValueError):
        percentile(values, 1.5)
    s = summarize([0.3, 0.1, 0.2])
    assert (s.count, s.p50, s.p99, s.max) == (3, 0.2, 0.3, 0.3)
    assert summarize([]).count == 0 and summarize([]).line() == "no samples"


def test_rates_and_arguments() -> None:
    assert parse_rates("200,500, 1000") == [200.0, 500.0, 1000.0]
    for bad in ("", "0", "-5", "fast", "nan"):
        with pytest.raises(ValueError):
            parse_rates(bad)
    args = _args("--rate", "200,500", "--seconds", "3", "--max-batch-delay", "0.02")
    assert bench_live.validate(args) == [200.0, 500.0]
    assert (args.sink, args.slot_ms, args.lanes, args.batch_size) == ("both", 400.0, 16, None)
    for argv in (("--seconds", "0"), ("--lanes", "0"), ("--slot-ms", "-1"), ("--flush-idle", "0"),
                 ("--batch-size", "0"), ("--rate", "0")):
        with pytest.raises(ValueError):
            bench_live.validate(_args(*argv))


def test_bad_arguments_exit_2_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "live", "--rate", "0"]) == 2
    assert "oof bench live: rates must be numbers > 0" in capsys.readouterr().err


def test_book_counts_only_the_window_and_finds_each_moments_trigger() -> None:
    book = LatencyBook(window=(10.0, 20.0))
    # (signature, due, published at, block time, first of its slot)
    for sig, due, at, bt, new in [("w", 9.0, 9.0, 100, True), ("a", 10.0, 10.1, 200, True),
                                  ("b", 11.0, 11.0, 200, False), ("c", 12.0, 12.5, 300, True),
                                  ("z", 20.0, 20.0, 400, True)]:
        book.publish(sig, due, at, bt, new)
    book.ack([(12.9, ["w", "a", "b"], [("m1", 200)]), (20.3, ["c", "z"], [("m1", 250), ("m0", 50)])])
    book.notify(20.32, "m1")
    book.notify(12.91, "m1")
    assert sorted(book.measured) == ["a", "b", "c"]  # "w" is warm-up, "z" cool-down
    assert book.unacked() == 0
    assert [round(x, 3) for x in sorted(book.tx_latencies())] == [1.9, 2.8, 7.8]
    assert [round(x, 3) for x in sorted(book.publish_lag())] == [0.0, 0.1, 0.5]
    assert book.achieved_rate() == pytest.approx(3 / 10)  # three in a 10 s window
    # m1 at 200: the slot of "a" (block time 200) triggered it; at 250: the next slot reaching 250 is "c"'s
    assert book.trigger(200) == (10.1, 10.0) and book.trigger(250) == (12.5, 12.0) and book.trigger(401) is None
    # m0 (updated_at 50) points at the warm-up slot: not counted
    assert [round(x, 3) for x in book.moment_sink_latencies()] == [2.8, 7.8]
    waits, rest = book.moment_split()  # "a"'s slot closes as "c"'s starts (12.5), "c"'s as "z"'s (20.0)
    assert [round(x, 3) for x in waits] == [2.4, 7.5] and [round(x, 3) for x in rest] == [0.4, 0.3]
    latencies, offsets = book.moment_notify_latencies()
    assert [round(x, 3) for x in latencies] == [7.82, 2.81]  # each NOTIFY matched to the nearest write of m1
    assert [round(x, 3) for x in offsets] == [0.02, 0.01]
    book.publish("d", 13.0, 13.0, 300, False)
    assert book.unacked() == 1


def test_schedule_bursts_a_slot_at_its_start_or_spreads_it() -> None:
    due, slot = bench_live.schedule(1000, 0.4, burst=True)  # 400 transactions per slot
    assert [due(i) for i in (0, 399, 400, 1000)] == [0.0, 0.0, 0.4, 0.8]
    assert [slot(i) for i in (0, 399, 400, 1000)] == [0, 0, 1, 2]
    due, slot = bench_live.schedule(1000, 0.4, burst=False)
    assert [due(i) for i in (0, 399, 450)] == [0.0, 0.399, 0.45] and [slot(i) for i in (0, 399, 450)] == [0, 0, 1]
    due, slot = bench_live.schedule(1, 0.4, burst=True)  # sparse: one transaction every 2.5 slots
    assert [slot(i) for i in range(4)] == [0, 2, 5, 7] and [round(due(i), 3) for i in range(4)] == [0, 0.8, 2.0, 2.8]
    due, slot = bench_live.schedule(200, 0.0, burst=True)  # --slot-ms 0: one slot per transaction
    assert (due(3), slot(3)) == (0.015, 3)

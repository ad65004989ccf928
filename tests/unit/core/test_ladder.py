"""`Ladder`: crossed watches grouped by their extreme (S2E peaks, BHD troughs)."""

from __future__ import annotations

from decimal import Decimal as D

from core.detectors._ladder import Ladder


def test_ids_at_equal_keys_share_a_group_and_keys_stay_sorted() -> None:
    ladder = Ladder()
    ladder.put(D("2"), ["a"])
    ladder.put(D("1.0"), ["b"])
    ladder.put(D("2.00"), ["c"])  # the same key, however it is written
    assert ladder.keys == [D(1), D(2)] and ladder.groups == [["b"], ["a", "c"]] and ladder.size == 3


def test_take_below_is_strict_and_take_above_is_strict() -> None:
    ladder = Ladder.of([(D(1), "a"), (D(2), "b"), (D(3), "c")])
    assert ladder.take_below(D(2)) == [(D(1), ["a"])]  # a peak equal to the high is not beaten
    assert ladder.take_above(D(2)) == [(D(3), ["c"])]  # a trough equal to the low is not undercut
    assert ladder.entries() == [(D(2), "b")] and ladder.size == 1
    assert ladder.take_below(D(2)) == [] and ladder.take_above(D(2)) == []


def test_compact_drops_closed_ids_and_empty_groups() -> None:
    ladder = Ladder.of([(D(1), "a"), (D(1), "b"), (D(2), "c")])
    ladder.compact({"b"})
    assert ladder.entries() == [(D(1), "b")] and ladder.size == 1


def test_of_and_entries_round_trip_in_key_order() -> None:
    entries = [(D(3), "c"), (D(1), "a"), (D(3), "d"), (D(2), "b")]
    assert Ladder.of(entries).entries() == [(D(1), "a"), (D(2), "b"), (D(3), "c"), (D(3), "d")]

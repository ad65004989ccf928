"""deployments.ratelimit.gcra: exact boundaries, burst, remaining/reset/retry, sustained rate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployments.ratelimit.gcra import MICROS, Decision, Rate, decide, describe


def run(rate: Rate, times: list[float], tat: int | None = None) -> tuple[list[Decision], int | None]:
    decisions = []
    for now in times:
        decision, tat = decide(rate, "p", tat, now)
        decisions.append(decision)
    return decisions, tat


def test_limit_requests_at_once_then_one_per_emission_interval() -> None:
    # Arrange: 5 per 60 s, no burst -> E = 12 s
    rate = Rate(limit=5, window_s=60, burst=0)

    # Act
    first, tat = run(rate, [0.0] * 6)

    # Assert
    assert [d.allowed for d in first] == [True] * 5 + [False]
    assert [d.remaining for d in first] == [4, 3, 2, 1, 0, 0]
    assert first[5].retry_after_s == pytest.approx(12.0)
    assert first[5].reset_after_s == first[5].retry_after_s
    early, tat = run(rate, [11.999999], tat)
    assert not early[0].allowed and early[0].retry_after_s == pytest.approx(1e-6)
    on_time, tat = run(rate, [12.0, 12.0], tat)
    assert [d.allowed for d in on_time] == [True, False]
    assert on_time[0].remaining == 0 and on_time[0].retry_after_s == 0.0


def test_burst_adds_requests_at_once_but_not_to_the_sustained_rate() -> None:
    rate = Rate(limit=5, window_s=60, burst=2)

    burst, tat = run(rate, [0.0] * 8)
    assert [d.allowed for d in burst] == [True] * 7 + [False]
    assert burst[0].remaining == 6
    assert burst[7].retry_after_s == pytest.approx(12.0)

    # After the burst is spent, one request per 12 s and no more.
    later, _ = run(rate, [12.0, 12.0, 24.0, 30.0, 36.0], tat)
    assert [d.allowed for d in later] == [True, False, True, False, True]


def test_remaining_and_reset_track_the_next_freed_unit() -> None:
    rate = Rate(limit=5, window_s=60)

    decisions, _ = run(rate, [0.0, 6.0])

    assert (decisions[0].remaining, decisions[0].reset_after_s) == (4, 12.0)
    # TAT 24 at t=6: 18 s of debt -> 3 left, the 4th frees when the debt falls to 12 s.
    assert (decisions[1].remaining, decisions[1].reset_after_s) == (3, 6.0)
    assert (decisions[1].limit, decisions[1].window_s, decisions[1].policy_name) == (5, 60, "p")


def test_denied_request_leaves_the_tat_alone() -> None:
    rate = Rate(limit=1, window_s=10)
    _, tat = run(rate, [0.0])

    outcome = decide(rate, "p", tat, 5.0)

    assert not outcome.decision.allowed and outcome.tat_us == tat
    assert outcome.decision.retry_after_s == pytest.approx(5.0)


def test_idle_client_gets_its_full_capacity_back() -> None:
    rate = Rate(limit=3, window_s=30, burst=1)
    _, tat = run(rate, [0.0] * 4)

    decisions, _ = run(rate, [1000.0] * 5, tat)

    assert [d.allowed for d in decisions] == [True] * 4 + [False]


def test_uneven_emission_interval_rounds_up_to_whole_microseconds() -> None:
    rate = Rate(limit=7, window_s=60)

    assert rate.emission_us == 8_571_429
    decisions, _ = run(rate, [0.0] * 8)
    assert [d.allowed for d in decisions].count(True) == 7
    assert decisions[7].retry_after_s == pytest.approx(8.571429)


def test_tat_beyond_tolerance_after_tightening_reports_zero_remaining() -> None:
    # Written under a looser policy: 100 s of debt, but the new tolerance is 60 s.
    rate = Rate(limit=5, window_s=60)

    decision = describe(rate, "p", False, 100 * MICROS, 0)

    assert decision.remaining == 0
    assert decision.retry_after_s == pytest.approx(52.0)  # debt must fall to 60 - 12 = 48 s


@pytest.mark.parametrize("kwargs", [{"limit": 0, "window_s": 60}, {"limit": 1, "window_s": 0}, {"limit": 1, "window_s": 1, "burst": -1}])
def test_invalid_rates_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Rate(**kwargs)


@given(
    limit=st.integers(1, 20),
    window_s=st.integers(1, 120),
    burst=st.integers(0, 5),
    gaps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=200),
)
def test_never_more_than_capacity_plus_sustained_rate(limit: int, window_s: int, burst: int, gaps: list[float]) -> None:
    rate = Rate(limit, window_s, burst)
    times, now = [], 0.0
    for gap in gaps:
        now += gap
        times.append(now)

    decisions, _ = run(rate, times)

    allowed_at = [t for t, d in zip(times, decisions) if d.allowed]
    for i, start in enumerate(allowed_at):
        in_span = sum(1 for t in allowed_at[i:] if t - start < window_s)
        assert in_span <= rate.capacity + limit
    elapsed_us = round(times[-1] * MICROS)
    assert len(allowed_at) <= rate.capacity + elapsed_us // rate.emission_us

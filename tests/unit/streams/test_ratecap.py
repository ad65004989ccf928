"""RateCap arithmetic with an injected clock: no 10 s window ever holds more than the cap."""

from __future__ import annotations

import pytest

from streams.rpc import RateCap


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def cap(capacity: int = 100) -> tuple[RateCap, FakeClock]:
    clock = FakeClock()
    return RateCap(capacity, 10.0, clock=clock, sleep=clock.sleep), clock


async def test_a_full_budget_goes_at_once_then_the_next_waits_for_the_window() -> None:
    bucket, clock = cap()

    for _ in range(100):
        await bucket.acquire()
    assert clock.now == 0.0

    await bucket.acquire()
    assert clock.now == pytest.approx(10.0)


async def test_batched_sub_requests_are_counted_one_by_one() -> None:
    bucket, clock = cap()

    await bucket.acquire(60)
    clock.now = 4.0
    await bucket.acquire(40)
    assert bucket.delay(1) == pytest.approx(6.0)  # the 60 come back at t=10

    await bucket.acquire(50)
    assert clock.now == pytest.approx(10.0)
    assert bucket.delay(11) == pytest.approx(4.0)  # 90 in the window until the 40 expire at t=14


async def test_no_sliding_window_exceeds_the_cap() -> None:
    # A bucket refilling continuously would let 2x through right after an idle period.
    bucket, clock = cap(10)
    stamps: list[float] = []
    for _ in range(55):
        await bucket.acquire()
        stamps.append(clock.now)
        clock.now += 0.3

    for start in stamps:
        assert sum(1 for t in stamps if start <= t < start + 10.0) <= 10


async def test_more_than_the_capacity_in_one_go_is_refused() -> None:
    bucket, _ = cap(5)
    with pytest.raises(ValueError):
        await bucket.acquire(6)

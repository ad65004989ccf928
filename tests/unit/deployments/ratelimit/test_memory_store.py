"""deployments.ratelimit.memory_store: same GCRA answers as the pure math, bounded memory."""

from __future__ import annotations

import asyncio

import pytest

from deployments.ratelimit.gcra import Rate
from deployments.ratelimit.memory_store import MemoryStore


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_boundary_matches_the_pure_math() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    rate = Rate(limit=5, window_s=60)

    first = [await store.check("p", rate, "alice") for _ in range(6)]
    clock.now += 12
    later = [await store.check("p", rate, "alice") for _ in range(2)]

    assert [d.allowed for d in first] == [True] * 5 + [False]
    assert first[5].retry_after_s == pytest.approx(12.0)
    assert [d.allowed for d in later] == [True, False]


async def test_subjects_and_policies_have_separate_budgets() -> None:
    store = MemoryStore(clock=FakeClock())
    rate = Rate(limit=1, window_s=60)

    answers = [
        await store.check("a", rate, "alice"),
        await store.check("a", rate, "bob"),
        await store.check("b", rate, "alice"),
        await store.check("a", rate, "alice"),
    ]

    assert [d.allowed for d in answers] == [True, True, True, False]


async def test_entries_expire_at_their_tat_and_size_is_bounded() -> None:
    clock = FakeClock()
    store = MemoryStore(maxsize=3, clock=clock)
    rate = Rate(limit=1, window_s=10)

    for n in range(10):
        await store.check("p", rate, f"client-{n}")
    assert len(store) == 3
    clock.now += 10
    assert len(store) == 0


async def test_concurrent_checks_share_one_budget() -> None:
    store = MemoryStore(clock=FakeClock())
    rate = Rate(limit=10, window_s=60)

    decisions = await asyncio.gather(*(store.check("p", rate, "alice") for _ in range(50)))

    assert sum(d.allowed for d in decisions) == 10

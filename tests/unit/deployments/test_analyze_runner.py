"""How an API replica keeps the analyze runner (`deployments.analyze_runner`) and how a runner
counts its holders (`actors.analyze.Leases`), without Ray: fakes stand in for the actor."""

from __future__ import annotations

from typing import Any

from actors.analyze import Leases
from core.settings import AnalyzeSettings, Settings
from deployments.analyze_runner import RunnerKeeper, keep_runner
from deployments.health import RunnerState


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_lease_lapses_only_when_no_holder_renewed_it_in_time() -> None:
    clock = _Clock()
    leases = Leases(60, clock)
    clock.now = 50
    leases.renew("a")
    leases.renew("b")
    clock.now = 100
    leases.renew("b")
    assert leases.holders() == ["a", "b"] and not leases.lapsed()
    clock.now = 115
    assert leases.holders() == ["b"] and not leases.lapsed()  # `a` went silent, `b` still holds it
    clock.now = 161
    assert leases.holders() == [] and leases.lapsed()
    assert Leases(60, clock).lapsed() is False  # a new runner waits `lease_s` for its first holder


def test_releasing_the_last_holder_says_so_and_without_a_lease_nothing_lapses() -> None:
    clock = _Clock()
    leases = Leases(None, clock)
    leases.renew("a")
    leases.renew("b")
    assert leases.release("a") is False and leases.release("b") is True
    clock.now = 10**9
    assert not leases.lapsed()  # `oof run`'s runner: counted, never stopped for lack of holders


class _Method:
    def __init__(self, answer: Any) -> None:
        self.answer, self.calls = answer, []

    def remote(self, *args: Any) -> Any:
        self.calls.append(args)

        async def call() -> Any:
            return self.answer

        return call()


class _Runner:
    def __init__(self, *, accepts: bool) -> None:
        self.hold, self.release = _Method(accepts), _Method(None)


async def test_a_replica_waits_out_a_closing_runner_holds_the_new_one_and_releases_it() -> None:
    closing, fresh = _Runner(accepts=False), _Runner(accepts=True)
    runners = iter([closing, fresh, fresh])
    state = RunnerState()
    keeper = RunnerKeeper(lambda: next(runners), "replica-1", state, namespace="ns", retry_s=0)
    assert await keeper.hold()
    assert state.state == "running" and state.detail == {"actor": "oof:analyze", "namespace": "ns"}
    assert await keeper.hold()  # a renewal looks the runner up again
    await keeper.close()
    assert closing.hold.calls == [("replica-1",)] and fresh.hold.calls == [("replica-1",)] * 2
    assert fresh.release.calls == [("replica-1",)] and closing.release.calls == []


async def test_when_ray_cannot_create_the_runner_the_replica_says_why_and_retries() -> None:
    attempts: list[int] = []

    def refuse() -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the GCS is unreachable\ntraceback ...")
        return _Runner(accepts=True)

    state = RunnerState()
    keeper = RunnerKeeper(refuse, "replica-1", state, namespace="ns")
    assert not await keeper.hold()
    assert state.state == "unavailable"
    assert state.detail == {"actor": "oof:analyze", "namespace": "ns", "error": "RuntimeError: the GCS is unreachable"}
    assert await keeper.hold() and state.state == "running"  # the next renewal
    await keeper.close()


def test_with_analyze_disabled_a_replica_keeps_no_runner() -> None:
    state = RunnerState()
    assert keep_runner(Settings(analyze=AnalyzeSettings(enabled=False)), "replica-1", state) is None
    assert state.state == "disabled"

"""`oof:analyze` as the API's replicas keep it: one runner per `analyze.ray_namespace`, shared.

`POST /v1/analyze` only queues a job; a runner (`actors.analyze.AnalyzeRunner`) claims it.
So however the API was started (`oof serve`, `serve run configs/serve.yaml`, `oof run`),
each replica makes sure one runs: `deployments.pipeline.open_analyze_runner` looks the
named actor `oof:analyze` up in `analyze.ray_namespace` (Ray's `get_if_exists`) and returns
the runner already there — `oof run`'s, or one another replica made — or creates it,
detached and reserving no CPU (`num_cpus=0`, the replicas keep theirs). Replicas starting
at the same moment end up with the same actor. The namespace is explicit because a
replica's own is its deployer's (`oof serve`: an anonymous one; `oof run`: `oof`).

Leases: a replica `hold`s the runner when it starts and every `lease_s / 4` after (looking
it up by name each time, so a runner that went away — `oof run` stopped it, someone killed
it — is replaced), and `release`s it from the replica's `__del__`. A runner the replicas
made stops itself when the last holder releases it (the app deleted, `serve shutdown`) or
when nobody has held it for `lease_s` (replicas killed without a word); a runner `oof run`
started is only counted, never stopped, by them.

Nothing here keeps the API from serving: when Ray cannot create the runner, the replica's
`RunnerState` says `unavailable` and why (`/health/detailed`, check `analyze`), and the next
renewal tries again.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from ray.exceptions import RayActorError

from actors.config import PipelineConfig, actor_name
from core.settings import Settings
from deployments.health import RunnerState
from streams.cancel import cancel_and_wait

__all__ = ["LEASE_S", "RunnerKeeper", "keep_runner"]

LEASE_S = 60.0
HOLD_TIMEOUT_S = 30.0  # a new runner's constructor runs in a new worker process first
_CLOSING_ATTEMPTS = 20  # a closing runner keeps its name for a moment: look again this often

log = structlog.get_logger("oof.analyze")


class RunnerKeeper:
    """Holds the runner `open_runner` (blocking, run in a thread) returns, on behalf of `holder`."""

    def __init__(self, open_runner: Callable[[], Any], holder: str, state: RunnerState, *, namespace: str,
                 lease_s: float = LEASE_S, retry_s: float = 0.5) -> None:
        self._open, self.holder, self.state = open_runner, holder, state
        self.namespace, self.lease_s, self.retry_s = namespace, lease_s, retry_s
        self.actor = actor_name("analyze", lane=PipelineConfig().lane)
        self.runner: Any = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Hold the runner now and every `lease_s / 4`, in the background (the replica serves meanwhile)."""
        self.state.set("starting", actor=self.actor, namespace=self.namespace)
        self._task = asyncio.get_running_loop().create_task(self._keep(), name="analyze-runner-keeper")

    async def _keep(self) -> None:
        while True:
            await self.hold()
            await asyncio.sleep(self.lease_s / 4)

    async def hold(self) -> bool:
        """Find or create the runner and renew this holder's lease; False (and why, in `state`) if Ray could not."""
        try:
            runner = await self._hold()
        except Exception as exc:  # noqa: BLE001 - the API serves without a runner; the next renewal retries
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
            if self.state.state != "unavailable":
                log.warning("analyze_runner_unavailable", holder=self.holder, namespace=self.namespace, error=error)
            self.state.set("unavailable", actor=self.actor, namespace=self.namespace, error=error)
            self.runner = None
            return False
        if self.state.state != "running" or runner is not self.runner:
            log.info("analyze_runner_held", holder=self.holder, actor=self.actor, namespace=self.namespace)
        self.runner = runner
        self.state.set("running", actor=self.actor, namespace=self.namespace)
        return True

    async def _hold(self) -> Any:
        for _ in range(_CLOSING_ATTEMPTS):
            runner = await asyncio.to_thread(self._open)
            try:
                if await _within(runner.hold.remote(self.holder), HOLD_TIMEOUT_S):
                    return runner
            except RayActorError:
                pass  # it died between the lookup and the call: look again
            await asyncio.sleep(self.retry_s)  # it is closing: its name is free once it is gone
        raise RuntimeError(f"{self.actor} kept closing")

    async def close(self) -> None:
        """Stop renewing and release the runner (the last holder's release stops a runner the API made)."""
        await cancel_and_wait(self._task)
        runner, self.runner = self.runner, None
        if runner is None:
            return
        try:
            await _within(runner.release.remote(self.holder), 5.0)
        except Exception as exc:  # noqa: BLE001 - shutting down regardless: its lease lapses instead
            log.warning("analyze_runner_release_failed", holder=self.holder, error=type(exc).__name__)
        else:
            log.info("analyze_runner_released", holder=self.holder, actor=self.actor, namespace=self.namespace)


async def _within(ref: Awaitable[Any], timeout_s: float) -> Any:
    async def result() -> Any:
        return await ref

    return await asyncio.wait_for(result(), timeout_s)


def keep_runner(settings: Settings, holder: str, state: RunnerState, lease_s: float = LEASE_S) -> RunnerKeeper | None:
    """What an API replica calls once its dependencies are up (on its event loop): a started keeper,
    or None with `state` saying `disabled` when `analyze.enabled` is false."""
    if not settings.analyze.enabled:
        state.set("disabled")
        return None

    @functools.cache
    def dsn() -> str:
        from streams.storage import resolve_dsn

        return resolve_dsn(settings.database)

    def open_runner() -> Any:
        from deployments.pipeline import open_analyze_runner

        return open_analyze_runner(settings, dsn(), lease_s)

    keeper = RunnerKeeper(open_runner, holder, state, namespace=settings.analyze.ray_namespace, lease_s=lease_s)
    keeper.start()
    return keeper

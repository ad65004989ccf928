"""The streaming pipeline's composition root: settings → `PipelineConfig` → `oof:supervisor` → graph.

The driver (a CLI command or a test) starts Ray, calls `start(...)` and gets a `Pipeline`
handle: `wait()` for a recording's summary, `status()`, `stop()` (live: end the source,
final checkpoint, drain), `moments()` (in-memory sink), `take_recent()` (moments written
since the last call, for printing) and `shutdown()` (kill the actors). Actors live in the
driver's Ray namespace unless the config names one (tests give each pipeline its own).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import ray

from actors import PipelineConfig, SourceSpec, Supervisor, actor_options
from core.models import Moment
from core.settings import Settings, SolanaSettings
from core.thresholds import Thresholds

__all__ = ["Pipeline", "pipeline_config", "start", "start_analyze_runner", "open_analyze_runner", "replay_file",
           "init_ray"]


def init_ray(address: str | None = None, *, dashboard: bool = False, namespace: str = "oof") -> None:
    """Join `address` (a cluster; its token comes from RAY_AUTH_TOKEN or ~/.ray/auth_token) or start a
    local Ray. A local start needs no token handling: `ray.init` creates and uses its own."""
    if ray.is_initialized():
        return
    ray.init(address=address, include_dashboard=dashboard, log_to_driver=False, namespace=namespace,
             configure_logging=False)


def pipeline_config(settings: Settings, **overrides: Any) -> PipelineConfig:
    """The pipeline's config from settings; every actor process logs as `settings.log` says."""
    from deployments.logging import configure_logging

    overrides.setdefault("log_setup", functools.partial(configure_logging, settings.log))
    return PipelineConfig.from_settings(settings.pipeline, settings.thresholds, **overrides)


class Pipeline:
    """Driver-side handle of a running pipeline."""

    def __init__(self, supervisor: Any, config: PipelineConfig) -> None:
        self.supervisor, self.config = supervisor, config

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        return ray.get(self.supervisor.wait.remote(), timeout=timeout)

    def rerun(self, spec: SourceSpec) -> None:
        """Run another source (or the same again) through the same actors, once `wait()` returned."""
        ray.get(self.supervisor.start.remote(spec))

    def status(self) -> dict[str, Any]:
        return ray.get(self.supervisor.status.remote())

    def stop(self) -> None:
        ray.get(self.supervisor.stop.remote())

    def moments(self) -> list[Moment]:
        return ray.get(self.supervisor.moments.remote())

    def take_recent(self) -> list[Moment]:
        return ray.get(self.supervisor.take_recent.remote())

    def shutdown(self) -> None:
        try:
            ray.get(self.supervisor.shutdown.remote(), timeout=30)
        finally:
            ray.kill(self.supervisor, no_restart=True)


def start(config: PipelineConfig, spec: SourceSpec, solana: SolanaSettings | None = None) -> Pipeline:
    """Build the graph (named actors) and start the source; returns at once."""
    solana = solana or spec.solana or SolanaSettings()
    supervisor = Supervisor.options(**actor_options(config, "supervisor")).remote(config, solana)
    ray.get(supervisor.start.remote(spec))
    return Pipeline(supervisor, config)


def start_analyze_runner(settings: Settings, config: PipelineConfig, dsn: str, solana: SolanaSettings | None = None,
                         **options: Any) -> Any:
    """`oof:analyze` in `config`'s namespace (else `analyze.ray_namespace`), taking queued analyze jobs at
    once; returns its handle. `options` go to Ray (`lifetime`, `get_if_exists`) except `lease_s`, the
    runner's own (see `open_analyze_runner`). Raises ValueError when the name is taken."""
    from actors.analyze import AnalyzeRunner, lane_config

    lease_s = options.pop("lease_s", None)
    config = dataclasses.replace(config, namespace=config.namespace or settings.analyze.ray_namespace)  # its lane's too
    # It mostly waits (on the database, the RPC node, its lane): no CPU of its own is reserved.
    options = {**actor_options(config, "analyze"), "max_task_retries": 0, "num_cpus": 0, **options}
    return AnalyzeRunner.options(**options).remote(settings.analyze, settings.database, dsn, solana or settings.solana,
                                                   lane_config(config, settings.analyze), lease_s,
                                                   settings.history_prices)


def open_analyze_runner(settings: Settings, dsn: str, lease_s: float) -> Any:
    """The API's way to `oof:analyze` (blocking: call it off the event loop): the runner of
    `analyze.ray_namespace` if there is one (e.g. `oof run`'s), else a new detached one that stops
    once nobody has held it for `lease_s`. Ray's `get_if_exists` makes concurrent callers share one."""
    return start_analyze_runner(settings, pipeline_config(settings, dsn=dsn), dsn, lifetime="detached",
                                get_if_exists=True, lease_s=lease_s)


def replay_file(
    path: Path,
    thresholds: Thresholds | None = None,
    *,
    wallets: list[str] | None = None,
    shard_count: int = 4,
    price_shards: int = 2,
    batch_size: int = 500,
    namespace: str | None = None,
) -> tuple[list[Moment], dict[str, Any]]:
    """A recording through the actor pipeline in slot order (as `oof replay` reads it), in-memory sink.

    Returns the final state of every moment and the pipeline's summary (tx/s, stage times)."""
    config = PipelineConfig(shard_count=shard_count, price_shards=price_shards, batch_size=batch_size,
                            thresholds=thresholds or Thresholds(), namespace=namespace)
    spec = SourceSpec("file", path=str(path), tracked=None if wallets is None else tuple(wallets))
    started = time.perf_counter()
    pipeline = start(config, spec)
    try:
        summary = pipeline.wait()
        moments = pipeline.moments()
    finally:
        pipeline.shutdown()
    summary["wall_s"] = round(time.perf_counter() - started, 3)
    return moments, summary

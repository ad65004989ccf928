"""The API on Ray Serve: the `OofApi` ingress deployment, its app builder, and `run` (serve.start + serve.run).

Each replica loads `Settings` itself (environment + `configs/oof.yaml` + `$OOF_CONFIG` +
the builder's `config_files`), builds its dependencies in its async constructor
(`compose.build_deps`: pool, Redis, JWKS, limiter, cache, metrics) and then hands Serve the
app from `app.build_app` through `__serve_build_asgi_app__` (late-bound ingress). So the
FastAPI app, with its middleware and exception handlers, is created *inside* the replica,
complete, before it serves: nothing is pickled at decoration time, and the unit tests run
the very same `build_app`.

With `analyze.enabled`, each replica then keeps the analyze runner `oof:analyze`
(`deployments.analyze_runner`): it finds the one in `analyze.ray_namespace` (`oof run`'s,
or another replica's) or creates it, detached, and holds it with a lease; the last replica
to shut down (`serve shutdown`, the app deleted) releases it and the runner stops. So
`POST /v1/analyze` jobs run however the API was started; if Ray cannot create the runner,
the replica serves anyway and `/health/detailed` says so.

`check_health` pings the database (the critical dependency) every `health_check_period_s`;
it fails only after `failures_before_unhealthy` consecutive failed pings, so a blip does not
restart every replica at once (a restart cannot fix a database outage; `/health/ready`
reports it at once).

`serve run configs/serve.yaml` uses `app_builder`; `oof serve` and the e2e tests use `run`,
which applies the same YAML (deployment options, HTTP and controller options) from Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve.deployment import Application
from ray.serve.schema import ServeDeploySchema

from core.errors import DatabaseError
from core.paths import project_root
from deployments.analyze_runner import keep_runner
from deployments.app import build_app
from deployments.compose import build_deps, default_instance
from deployments.logging import configure_logging
from deployments.settings_loader import load
from streams.storage import health_check

__all__ = [
    "API_APP_NAME",
    "DEPLOYMENT_NAME",
    "DEFAULT_SERVE_CONFIG",
    "BuilderArgs",
    "OofApi",
    "app_builder",
    "application",
    "load_serve_config",
    "deployment_options",
    "run",
]

API_APP_NAME = "oof-api"
DEPLOYMENT_NAME = "OofApi"
DEFAULT_SERVE_CONFIG = project_root() / "configs" / "serve.yaml"

log = structlog.get_logger("oof.serve")


class BuilderArgs(BaseModel):
    """`args:` of the application in serve.yaml (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    config_files: list[str] = Field(default_factory=list, description="YAML layered over configs/oof.yaml")
    failures_before_unhealthy: int = Field(3, ge=1, description="consecutive failed DB pings before check_health fails")


def _app_name() -> str:
    """Replicas of one Serve application share their metrics (`deployments.metrics_share`); other apps don't."""
    try:
        return str(serve.get_replica_context().app_name)
    except Exception:  # noqa: BLE001 - outside a replica (tests)
        return "api"


def _replica_name() -> str:
    try:
        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # noqa: BLE001 - outside a replica (tests)
        return default_instance()


@serve.deployment(
    name=DEPLOYMENT_NAME,
    ray_actor_options={"num_cpus": 0.5},
    max_ongoing_requests=64,
    health_check_period_s=10,
    health_check_timeout_s=5,
    graceful_shutdown_timeout_s=10,
)
@serve.ingress()
class OofApi:
    """One API replica: settings → deps (async) → the FastAPI app; `check_health` pings the database."""

    async def __init__(self, config_files: Sequence[str] = (), failures_before_unhealthy: int = 3) -> None:
        settings = load(extra_files=[Path(path) for path in config_files])  # ConfigError lists every problem
        configure_logging(settings.log)
        self._settings = settings
        self._failures_allowed = failures_before_unhealthy
        self._failures = 0
        self._deps = await build_deps(settings, instance=_replica_name(), metrics_group=_app_name())
        self._runner = keep_runner(settings, _replica_name(), self._deps.analyze_runner)

    def __serve_build_asgi_app__(self) -> Any:
        return build_app(self._settings, self._deps, behind_serve=True)

    async def check_health(self) -> None:
        try:
            await health_check(self._deps.pool, timeout=2.0)
        except DatabaseError as exc:
            self._failures += 1
            log.warning("serve.health_check_failed", failures=self._failures, error=exc.detail)
            if self._failures >= self._failures_allowed:
                raise RuntimeError(f"database unreachable for {self._failures} consecutive health checks") from exc
        else:
            self._failures = 0

    async def __del__(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None:
            await runner.close()  # the last replica's release stops a runner the API started
        deps = getattr(self, "_deps", None)
        if deps is not None:
            await deps.aclose()


def application(
    args: BuilderArgs | None = None, options: Mapping[str, Any] | None = None
) -> Application:
    """The bound app; `options` are `Deployment.options(...)` overrides (from serve.yaml or a test)."""
    args = args or BuilderArgs()
    deployment = OofApi.options(**dict(options)) if options else OofApi
    return deployment.bind(config_files=args.config_files, failures_before_unhealthy=args.failures_before_unhealthy)


def app_builder(args: dict[str, Any]) -> Application:
    """Import path of serve.yaml (`deployments.serve_app:app_builder`); Serve passes the YAML `args`."""
    return application(BuilderArgs.model_validate(args or {}))


def load_serve_config(path: Path = DEFAULT_SERVE_CONFIG) -> ServeDeploySchema:
    return ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))


def _app_schema(config: ServeDeploySchema) -> Any:
    for app in config.applications:
        if app.name == API_APP_NAME:
            return app
    raise ValueError(f"the Serve config has no application named {API_APP_NAME!r}")


def deployment_options(config: ServeDeploySchema) -> dict[str, Any]:
    """The `OofApi` deployment's options as the YAML sets them (only the keys it sets)."""
    for deployment in _app_schema(config).deployments:
        if deployment.name == DEPLOYMENT_NAME:
            return deployment.model_dump(exclude_unset=True, exclude={"name"})
    return {}


def run(
    config: ServeDeploySchema,
    *,
    http_host: str | None = None,
    http_port: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    controller_env: Mapping[str, str] | None = None,
    builder_args: Mapping[str, Any] | None = None,
    name: str | None = None,
    route_prefix: str | None = None,
) -> str:
    """Start Serve (HTTP and controller options from `config`) and deploy the API; returns its base URL.

    Needs `ray.init` first. `overrides` refine the deployment options (e.g. `num_replicas`,
    `ray_actor_options`); `controller_env` replaces the controller's env vars (data plane);
    `builder_args` refine the application's `args`; `name` and `route_prefix` deploy it as
    another application beside `oof-api` (tests).
    """
    app_schema = _app_schema(config)
    base = deployment_options(config)
    options = {**base, **dict(overrides or {})}
    if "ray_actor_options" in (overrides or {}):  # merged: an override of runtime_env keeps num_cpus
        options["ray_actor_options"] = {**base.get("ray_actor_options", {}), **dict(overrides["ray_actor_options"])}
    if "num_replicas" in (overrides or {}):
        options.pop("autoscaling_config", None)  # a fixed replica count replaces autoscaling
    http = config.http_options.model_dump(exclude_unset=True)
    http["host"] = http_host or http.get("host", "127.0.0.1")
    http["port"] = http_port or http.get("port", 8000)
    controller = config.controller_options.model_dump(exclude_unset=True) if config.controller_options else {}
    if controller_env is not None:
        controller = {"runtime_env": {"env_vars": dict(controller_env)}}
    serve.start(proxy_location=config.proxy_location, http_options=http, controller_options=controller or None)
    args = BuilderArgs.model_validate({**(app_schema.args or {}), **dict(builder_args or {})})
    route_prefix = route_prefix or app_schema.route_prefix
    serve.run(application(args, options), name=name or app_schema.name, route_prefix=route_prefix)
    return f"http://{http['host']}:{http['port']}{(route_prefix or '/').rstrip('/')}"

"""`oof serve`: the HTTP API on Ray Serve, until Ctrl-C (or SIGTERM).

Settings → migrations → Ray (a local instance, or `--address` to join a cluster) → Serve
with `configs/serve.yaml` (deployment options, HTTP and controller options: the
throughput-optimized HAProxy data plane by default) → the `oof-api` application, bound to
`api.host:api.port` from the settings. The replicas load the same settings (environment,
`configs/oof.yaml`, `$OOF_CONFIG`, the `--config` files); with no `DATABASE_URL` the
embedded PostgreSQL started here is handed to them as `DATABASE_URL`.

Stopping: Serve is shut down with a bound (`--shutdown-timeout`; with HAProxy it otherwise
waits 30 s, docs/SERVE.md), then a local Ray is stopped (which ends HAProxy too). Joined to
a cluster, only the `oof-api` application is deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from pathlib import Path

from deployments.commands import add_config_option

__all__ = ["add_parser", "run", "FAST_DATA_PLANE_VARS"]

FAST_DATA_PLANE_VARS = ("RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_SERVE_ENABLE_HA_PROXY")
_SETTINGS_ENV = ("DATABASE_URL", "REDIS_URL", "DYNAMIC_ENVIRONMENT_ID", "OOF_CONFIG")


def add_parser(parser: argparse.ArgumentParser) -> None:
    from core.paths import project_root

    add_config_option(parser)
    parser.add_argument("--address", help="join this Ray cluster (e.g. 10.0.0.5:6380, ray://...); default: start one")
    parser.add_argument(
        "--serve-config", type=Path, default=project_root() / "configs" / "serve.yaml", metavar="FILE",
        help="Ray Serve config: deployment options, HTTP and controller options (default: configs/serve.yaml)",
    )
    parser.add_argument(
        "--data-plane", choices=("config", "default"), default="config",
        help="'config': as the Serve config says (HAProxy, throughput-optimized); 'default': Serve's Python proxy",
    )
    parser.add_argument("--replicas", type=int, help="a fixed number of replicas instead of autoscaling")
    parser.add_argument("--dashboard", action="store_true", help="start the Ray dashboard (local Ray only)")
    parser.add_argument("--shutdown-timeout", type=float, default=10.0, metavar="S", help="bound on Serve's shutdown")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from deployments.logging import configure_logging
    from deployments.settings_loader import load_or_exit

    settings = load_or_exit(extra_files=args.config)
    configure_logging(settings.log)
    from core.errors import DatabaseError

    try:
        dsn = asyncio.run(_migrate(settings))
    except DatabaseError as exc:
        print(f"oof serve: {exc.detail}", file=sys.stderr)
        return 1
    from pydantic import ValidationError

    from deployments import serve_app

    try:
        config = serve_app.load_serve_config(args.serve_config)
    except (OSError, ValueError, ValidationError) as exc:
        print(f"oof serve: cannot use {args.serve_config}: {exc}", file=sys.stderr)
        return 2
    return _serve(args, settings, config, dsn)


async def _migrate(settings) -> str:  # type: ignore[no-untyped-def]
    import structlog

    from streams.storage import apply_migrations, create_pool, resolve_dsn

    dsn = await asyncio.to_thread(resolve_dsn, settings.database)
    pool = await create_pool(settings.database, dsn)
    try:
        structlog.get_logger("oof.serve").info("migrations_applied", applied=await apply_migrations(pool))
    finally:
        await pool.close()
    return dsn


def _replica_env(settings, dsn: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """What the replicas need to load the same settings, also on another machine."""
    env = {k: v for k, v in os.environ.items() if k.startswith("OOF_") or k in _SETTINGS_ENV}
    if settings.database.url is None:
        env["DATABASE_URL"] = dsn  # the embedded server started here
    return env


def _controller_env(config, data_plane: str) -> dict[str, str] | None:  # type: ignore[no-untyped-def]
    if data_plane == "config":
        return None
    configured = (config.controller_options.runtime_env or {}).get("env_vars", {}) if config.controller_options else {}
    return {k: v for k, v in configured.items() if k not in FAST_DATA_PLANE_VARS}


def _serve(args: argparse.Namespace, settings, config, dsn: str) -> int:  # type: ignore[no-untyped-def]
    import ray
    from ray import serve

    from deployments import serve_app

    local = args.address is None
    ray.init(address=args.address, include_dashboard=args.dashboard if local else None)
    stop = threading.Event()
    # After ray.init, which installs its own SIGTERM handler (RAY_NOTES).
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    overrides: dict[str, object] = {"ray_actor_options": {"runtime_env": {"env_vars": _replica_env(settings, dsn)}}}
    if args.replicas:
        overrides["num_replicas"] = args.replicas
    try:
        url = serve_app.run(
            config, http_host=settings.api.host, http_port=settings.api.port, overrides=overrides,
            controller_env=_controller_env(config, args.data_plane),
            builder_args={"config_files": [str(Path(path).resolve()) for path in args.config]},
        )
        print(f"OOF API at {url}  (docs {url}/docs, metrics {url}/metrics) — Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        print("oof serve: stopping", file=sys.stderr, flush=True)
        _stop(serve, ray, local, args.shutdown_timeout)
    return 0


def _stop(serve, ray, local: bool, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    from deployments.serve_app import API_APP_NAME

    action = serve.shutdown if local else (lambda: serve.delete(API_APP_NAME))
    worker = threading.Thread(target=action, name="serve-shutdown", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        print(f"oof serve: Serve did not stop within {timeout_s:g} s; stopping Ray", file=sys.stderr)
    if local:
        ray.shutdown()

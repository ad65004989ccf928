"""`oof run`: the whole service locally — Ray, the streaming pipeline, the API.

settings → PostgreSQL (embedded when there is no `DATABASE_URL`) → migrations → Ray (a
local one, or `--address` of a cluster) → the actor pipeline over the configured source
(default: the bundled recording) → the Serve API (`deployments.serve_app`) and, for a
long-lived run, `oof:analyze` taking `POST /v1/analyze` jobs (`actors.analyze`). Moments are
printed as they are found (new ones, and again when they become final). A recording ends
with a summary; the API then keeps serving until Ctrl-C. `--no-api` (the default for a
recording when stdin is not a terminal: scripts and CI) ends the command with the
recording instead. Ctrl-C / SIGTERM: the source stops, a final checkpoint is stored, the
queues drain, then Ray shuts down. A second run resumes from the stored checkpoint (what
the recording already delivered is recognised and skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from deployments.commands import add_config_option

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--replay", type=Path, help="recording to process (default: solana.replay_file)")
    parser.add_argument("--address", help="Ray cluster to join, e.g. ray://head:10001 (default: a local Ray)")
    parser.add_argument("--api", dest="api", action="store_true", default=None,
                        help="serve the API (default, except for a recording run from a script)")
    parser.add_argument("--no-api", dest="api", action="store_false",
                        help="no API: a recording ends the command once processed")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore stored checkpoints: start with empty wallet and price state "
                             "(needed after changing pipeline.shard_count / price_shards)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from deployments.logging import configure_logging
    from deployments.settings_loader import load_or_exit

    settings = load_or_exit(extra_files=args.config)
    configure_logging(settings.log)
    from actors.ingest_state import LayoutChanged
    from core.errors import DatabaseError

    try:
        dsn = asyncio.run(_database(settings, check_layout=not args.fresh))
    except DatabaseError as exc:
        print(f"oof run: {exc.detail}", file=sys.stderr)
        return 1
    except LayoutChanged as exc:  # before Ray starts: said in a second, not after the cluster's start-up
        print(f"oof run: the pipeline failed: LayoutChanged: {exc}", file=sys.stderr)
        return 1
    solana = settings.solana
    if args.replay is not None:
        solana = solana.model_copy(update={"source": "replay", "replay_file": args.replay})
    return _serve(settings, solana, dsn, args)


async def _database(settings: Any, *, check_layout: bool) -> str:
    """The migrated database's DSN; LayoutChanged if its checkpoints are of another layout."""
    from actors import ingest_state
    from streams.storage import apply_migrations, create_pool, resolve_dsn

    dsn = await asyncio.to_thread(resolve_dsn, settings.database)
    pool = await create_pool(settings.database, dsn)
    try:
        await apply_migrations(pool)
        if check_layout:
            async with pool.acquire() as conn:
                stored = await ingest_state.stored_layouts(conn)
            ingest_state.check_layout(stored, settings.pipeline.shard_count, settings.pipeline.price_shards)
    finally:
        await pool.close()
    return dsn


def _serve(settings: Any, solana: Any, dsn: str, args: argparse.Namespace) -> int:
    import ray

    from actors import SourceSpec
    from deployments.pipeline import init_ray, pipeline_config, start

    init_ray(args.address, dashboard=args.address is None)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own SIGTERM handler
        signal.signal(sig, lambda *_: stopping.set())
    config = pipeline_config(settings, dsn=dsn, resume=not args.fresh)
    pipeline = start(config, SourceSpec("settings", solana=solana, jupiter=settings.jupiter))
    runner = None
    try:
        wanted = args.api if args.api is not None else solana.source != "replay" or sys.stdin.isatty()
        if settings.analyze.enabled and (wanted or solana.source != "replay"):  # a long-lived run takes jobs
            runner = _start_runner(settings, config, dsn)
        api = _start_api(settings, dsn) if wanted else None
        summary = _watch(pipeline, stopping, finite=solana.source == "replay", api=api, dsn=dsn)
    except ray.exceptions.RayError as exc:  # the pipeline gave up: say why in one line
        cause: BaseException = exc
        while getattr(cause, "cause", None) is not None:
            cause = cause.cause  # type: ignore[attr-defined]
        print(f"oof run: the pipeline failed: {type(cause).__name__}: {str(cause).splitlines()[-1][:300]}",
              file=sys.stderr)
        return 1
    finally:
        if runner is not None:
            _stop(runner)
        pipeline.shutdown()
        ray.shutdown()
    print(f"stopped after batch {summary.get('checkpoint_batch')} (final checkpoint stored)" if stopping.is_set()
          else "done")
    return 0


def _start_runner(settings: Any, config: Any, dsn: str) -> Any:
    """Ours (stopped with the run), or None when the API of this Ray cluster already keeps one (left to it)."""
    from ray.exceptions import ActorAlreadyExistsError

    from deployments.pipeline import start_analyze_runner

    try:
        return start_analyze_runner(settings, config, dsn, settings.solana)
    except ActorAlreadyExistsError:
        print(f"oof run: oof:analyze already runs in Ray namespace {settings.analyze.ray_namespace!r}"
              " (kept by the API); using it", file=sys.stderr)
        return None


def _stop(runner: Any) -> None:
    import ray

    try:
        ray.get(runner.stop.remote(), timeout=30)
    except Exception as exc:  # noqa: BLE001 - shutting down regardless; a running job is requeued later
        print(f"oof run: the analyze runner did not stop cleanly ({type(exc).__name__})", file=sys.stderr)
    ray.kill(runner, no_restart=True)


def _start_api(settings: Any, dsn: str) -> str | None:
    try:
        from deployments import serve_app

        env = {"DATABASE_URL": dsn}
        return serve_app.run(serve_app.load_serve_config(), http_host=settings.api.host, http_port=settings.api.port,
                             overrides={"ray_actor_options": {"runtime_env": {"env_vars": env}}})
    except Exception as exc:  # noqa: BLE001 - the pipeline is useful without the API
        print(f"oof run: the API did not start ({type(exc).__name__}: {exc}); the pipeline goes on", file=sys.stderr)
        return None


def _watch(pipeline: Any, stopping: threading.Event, *, finite: bool, api: str | None, dsn: str) -> dict[str, Any]:
    if api:
        print(f"API: {api}  (Ctrl-C to stop)", flush=True)
    seen: dict[str, str] = {}
    summary: dict[str, Any] | None = None
    while True:
        for moment in pipeline.take_recent():
            if seen.get(moment.id) != moment.status.value:
                print(_line(moment, new=moment.id not in seen), flush=True)
                seen[moment.id] = moment.status.value
        if summary is None and (stopping.is_set() or pipeline.status()["done"]):
            if stopping.is_set():
                pipeline.stop()
            summary = pipeline.wait()
            print(_summary(summary, len(seen)), flush=True)
            print(asyncio.run(_stored(dsn)), flush=True)
            if stopping.is_set() or not (finite and api):
                return summary
            print("recording done; the API keeps serving (Ctrl-C to stop)", flush=True)
        if stopping.wait(0.5) and summary is not None:
            return summary


async def _stored(dsn: str) -> str:
    """What the database holds now (a resumed run finds nothing new, the earlier runs' moments are there)."""
    from collections import Counter

    import asyncpg

    from streams.storage import list_moments

    conn = await asyncpg.connect(dsn)
    try:
        moments = await list_moments(conn, limit=100_000)
    finally:
        await conn.close()
    kinds = Counter(m.kind.value for m in moments)
    return f"moments in the database: {len(moments)} — " + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
                                                              or "none")


def _line(m: Any, *, new: bool) -> str:
    what = "moment" if new else "update"
    return (f"{what:6} {m.kind.value:10} {m.status.value:5} wallet {m.wallet[:8]}… mint {m.mint[:8]}… "
            f"pct {m.pct:+.2%} usd {m.usd_value:,.2f}  {m.id}")


def _summary(s: dict[str, Any], moments: int) -> str:
    source = s.get("source_stats", {})
    return (f"{s.get('name', 'source')}: {s['tx_in']} transactions ({s['failed']} failed), {s['trades']} trades, "
            f"{source.get('malformed', 0)} unreadable lines in {s['elapsed_s']:.2f}s\n"
            f"pipeline: {s['tx_per_s']:,.0f} tx/s, {s['batches']} batches, p50/p99 latency "
            f"{s['latency_p50_s']}/{s['latency_p99_s']} s, recoveries {s['recoveries']}, "
            f"duplicates skipped {s['engine']['duplicates']}\n"
            f"moments found this run: {moments}; upserts by kind: {s['sink'].get('kinds', {})}")

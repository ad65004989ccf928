"""`oof run`: start the service locally.

Today this is the storage half of the pipeline, in-process: settings → PostgreSQL
(embedded when no `DATABASE_URL`) → migrations → the configured recording parsed and
stored (transactions and trade events, idempotently). The Ray pipeline and the API
attach here as they land.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from deployments.commands import add_config_option

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--replay", type=Path, help="recording to process (default: solana.replay_file)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from deployments.logging import configure_logging
    from deployments.settings_loader import load_or_exit

    settings = load_or_exit(extra_files=args.config)
    configure_logging(settings.log)
    from core.errors import DatabaseError

    try:
        summary = asyncio.run(_serve(settings, args.replay))
    except DatabaseError as exc:
        print(f"oof run: {exc.detail}", file=sys.stderr)
        return 1
    print(summary)
    return 0


async def _serve(settings, replay: Path | None) -> str:
    import structlog

    from core.paths import project_root
    from deployments.ingest import ingest_recording
    from streams.storage import apply_migrations, create_pool, resolve_dsn

    log = structlog.get_logger("oof.run")
    dsn = await asyncio.to_thread(resolve_dsn, settings.database)
    pool = await create_pool(settings.database, dsn)
    try:
        applied = await apply_migrations(pool)
        log.info("migrations_applied", applied=applied)
        path = replay or settings.solana.replay_path(project_root())
        started = time.perf_counter()
        stats = await ingest_recording(pool, path, batch_size=settings.pipeline.batch_size)
        elapsed = time.perf_counter() - started
        log.info("recording_ingested", path=str(path), seconds=round(elapsed, 3), **stats.as_dict())
        return stats.render(path, elapsed)
    finally:
        await pool.close()

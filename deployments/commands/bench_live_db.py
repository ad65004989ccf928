"""The PostgreSQL side of `oof bench live`: a throwaway database per phase, and LISTEN on its moments.

`create_database` makes `oof_bench_<random>` on the server of the admin DSN (`--admin-dsn`, else
`database.url`, else the embedded server) and applies the migrations; `drop_database` drops it
(`WITH (FORCE)`). `Listener` LISTENs on `oof_moments` (the channel the moments trigger
NOTIFYs) in a thread with its own event loop, so arrival times are not delayed by the loop
that runs the node and the publisher.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import threading
import time
from typing import Any

from deployments.commands.bench_live_stats import LatencyBook

__all__ = ["Listener", "admin_dsn_for", "create_database", "drop_database"]


class Listener:
    """LISTEN oof_moments in a thread of its own (its own event loop): arrival times are not delayed by
    the publisher's loop."""

    def __init__(self, dsn: str, book: LatencyBook) -> None:
        self.dsn, self.book = dsn, book
        self._ready, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), name="bench-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("could not LISTEN on oof_moments")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _listen(self) -> None:
        import asyncpg
        import orjson

        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.add_listener("oof_moments", lambda _c, _p, _ch, payload: self.book.notify(
                time.time(), orjson.loads(payload)["id"]))
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            await conn.close()


def admin_dsn_for(args: argparse.Namespace, settings: Any) -> str:
    if args.admin_dsn:
        return str(args.admin_dsn)
    from streams.storage import resolve_dsn

    return resolve_dsn(settings.database)  # database.url, else the embedded server (started if need be)


def _with_database(dsn: str, name: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(dsn)._replace(path=f"/{name}").geturl()


async def create_database(admin_dsn: str | None) -> str:
    import asyncpg

    from streams.storage import apply_migrations

    assert admin_dsn is not None
    name = f"oof_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = _with_database(admin_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return dsn


async def drop_database(admin_dsn: str, dsn: str) -> None:
    import asyncpg
    from urllib.parse import urlsplit

    name = urlsplit(dsn).path.lstrip("/")
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()

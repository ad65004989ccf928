"""`oof:sink`: batched, idempotent writes to PostgreSQL — or to memory, without a database.

One call per batch: its transactions (with raw JSON) and trade events, then its moment
upserts, in one database transaction; the moments table's trigger sends the NOTIFY. A
checkpoint call stores every actor's snapshot of one barrier, the source cursors and the
candle partials of the barrier's interval, atomically — after the moments of every batch
up to the barrier (the ingest sends calls one at a time, in order). Every write is keyed
(signature, (signature, ix), moment id, checkpoint id), so a replay after a crash rewrites
the same rows. Without a DSN the sink keeps the last state of every moment in memory
(`oof replay`, benchmarks) — the in-memory twin of the PostgreSQL sink. Once asked for
(`take_acks`, `oof bench live`), it also records when each write ended: what was written and when.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import ray
import structlog

from actors.config import setup_logging
from actors.ingest_state import stored_layouts
from actors.metrics import pipeline_metrics
from core.models import Moment
from core.settings import DatabaseSettings
from streams import storage

__all__ = ["SinkActor"]

log = structlog.get_logger("oof.sink")
Ack = tuple[float, tuple[str, ...], tuple[tuple[str, int], ...]]


@ray.remote
class SinkActor:
    def __init__(self, dsn: str | None, recent: int = 10_000, log_setup: Any = None) -> None:
        setup_logging(log_setup)
        self.dsn = dsn
        self.incarnation = uuid.uuid4().hex[:8]
        self._pool: Any = None
        self.final: dict[str, Moment] = {}  # memory mode only
        self.followed: dict[str, Any] = {}  # memory mode only: token accounts the source follows
        self.recent: deque[Moment] = deque(maxlen=recent)
        self.kinds: Counter[str] = Counter()
        self.written = {"transactions": 0, "moment_upserts": 0, "moments_changed": 0, "checkpoints": 0, "candles": 0}
        self._acks: list[Ack] | None = None  # None until `take_acks` is first called: no cost by default

    async def _conn_pool(self) -> Any:
        if self._pool is None:
            self._pool = await storage.create_pool(DatabaseSettings(pool_min=1, pool_max=4), self.dsn)
        return self._pool

    async def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "incarnation": self.incarnation, "database": self.dsn is not None, **self.written}

    async def write(self, rows: Sequence[tuple[Any, Any]], *shard_moments: Sequence[Moment]) -> int:
        """Store one batch: transactions + trade events, then each shard's moments. Returns moments changed."""
        moments = [m for part in shard_moments for m in part]
        changed = len(moments)
        if self.dsn is not None and (rows or moments):
            pool = await self._conn_pool()
            async with pool.acquire() as conn, conn.transaction():
                if rows:
                    await storage.upsert_transactions(conn, rows)
                    await storage.upsert_trade_events(conn, [t for parsed, _ in rows for t in parsed.trades])
                changed = await storage.upsert_moments(conn, moments) if moments else 0
        else:
            for moment in moments:
                self.final[moment.id] = moment
        if self._acks is not None:
            self._acks.append((time.time(), tuple(parsed.signature for parsed, _ in rows),
                               tuple((m.id, m.updated_at) for m in moments)))
        self.written["transactions"] += len(rows)
        self.written["moment_upserts"] += len(moments)
        self.written["moments_changed"] += changed
        self.recent.extend(moments)
        metrics = pipeline_metrics()
        by_kind = Counter(m.kind.value for m in moments)
        for kind, n in by_kind.items():
            metrics.moments.inc(n, tags={"kind": kind})
        self.kinds.update(by_kind)
        return changed

    async def take_acks(self) -> list[Ack]:
        """The writes that ended since the last call, oldest first: (wall time after the commit — its NOTIFYs
        are out —, signatures written, (moment id, updated_at) upserted). The first call starts the record."""
        acks, self._acks = self._acks or [], []
        return acks

    async def checkpoint(self, tag: str, last_slot: int, snapshots: dict[tuple[int, int], bytes],
                         candles: Sequence[Any], cursors: dict[str, tuple[str, int]]) -> bool:
        """One barrier, atomically: False (nothing stored) when a newer checkpoint is stored already."""
        if self.dsn is None:
            return False
        pool = await self._conn_pool()
        async with pool.acquire() as conn:
            if candles:  # partials of the interval: their own transaction, a rejected barrier keeps them
                self.written["candles"] += await storage.upsert_candles(conn, candles)
            try:
                async with conn.transaction():
                    for (count, shard), snapshot in sorted(snapshots.items()):
                        if not await storage.save_checkpoint(conn, shard, snapshot, last_slot, tag,
                                                             shard_count=count):
                            raise _Rejected((count, shard))
                    for wallet, (signature, slot) in sorted(cursors.items()):
                        await storage.set_cursor(conn, wallet, signature, slot)
            except _Rejected as exc:
                log.warning("checkpoint_rejected", tag=tag, checkpoint=exc.args[0], last_slot=last_slot)
                return False
        self.written["checkpoints"] += 1
        return True

    async def load_checkpoints(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[bytes, int, Any]]:
        if self.dsn is None:
            return {}
        pool = await self._conn_pool()
        out: dict[tuple[int, int], tuple[bytes, int, Any]] = {}
        async with pool.acquire() as conn:
            for key in keys:
                found = await storage.load_checkpoint(conn, key[1], shard_count=key[0])
                if found is not None:
                    out[key] = (found.snapshot, found.last_slot, found.last_signature)
        return out

    async def checkpoint_layouts(self) -> list[tuple[int, int]]:
        """(shard count, price actors) of every layout with a stored ingest checkpoint."""
        if self.dsn is None:
            return []
        pool = await self._conn_pool()
        async with pool.acquire() as conn:
            return await stored_layouts(conn)

    async def cursor(self, wallet: str) -> str | None:
        if self.dsn is None:
            return None
        pool = await self._conn_pool()
        async with pool.acquire() as conn:
            found = await storage.get_cursor(conn, wallet)
        return None if found is None else found.last_signature

    async def tracked_wallets(self) -> list[str]:
        if self.dsn is None:
            return []
        pool = await self._conn_pool()
        async with pool.acquire() as conn:
            return await storage.tracked_wallets(conn)

    async def followed_token_accounts(self, owners: list[str]) -> list[Any]:
        """The token accounts of `owners` the live source followed before (memory mode: this run's)."""
        if self.dsn is None:
            wanted = set(owners)
            return [t for t in self.followed.values() if t.owner in wanted]
        pool = await self._conn_pool()
        async with pool.acquire() as conn:
            return await storage.followed_token_accounts(conn, owners)

    async def follow_token_accounts(self, accounts: Sequence[Any]) -> int:
        """Remember token accounts the live source started following (streams.base.TokenAccount)."""
        if self.dsn is None:
            new = [t for t in accounts if t.account not in self.followed]
            self.followed.update((t.account, t) for t in new)
            return len(new)
        pool = await self._conn_pool()
        async with pool.acquire() as conn:
            return await storage.follow_token_accounts(conn, accounts)

    async def moments(self) -> list[Moment]:
        """Memory mode: the last state of every moment written."""
        return list(self.final.values())

    async def take_recent(self) -> list[Moment]:
        recent = list(self.recent)
        self.recent.clear()
        return recent

    async def stats(self) -> dict[str, Any]:
        return {**self.written, "kinds": dict(self.kinds)}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class _Rejected(Exception):
    pass

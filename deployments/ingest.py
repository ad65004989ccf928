"""Store a recording: parse each `getTransaction` result and upsert it with its trades.

In-process and batched; idempotent, so running the same recording twice changes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from core.errors import ParseError
from core.models import ParsedTransaction
from core.parse import parse_transaction, unwrap_result

__all__ = ["IngestStats", "ingest_recording"]

log = structlog.get_logger("oof.ingest")


@dataclass
class IngestStats:
    transactions: int = 0
    failed_transactions: int = 0
    trades: int = 0
    bad_lines: int = 0
    venues: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "transactions": self.transactions,
            "failed_transactions": self.failed_transactions,
            "trades": self.trades,
            "bad_lines": self.bad_lines,
        }

    def render(self, path: Path, seconds: float) -> str:
        venues = ", ".join(f"{name} {n}" for name, n in self.venues.most_common()) or "none"
        return (
            f"{path.name}: {self.transactions} transactions ({self.failed_transactions} failed), "
            f"{self.trades} trades, {self.bad_lines} unreadable lines in {seconds:.2f}s\n"
            f"trades by venue: {venues}"
        )


async def ingest_recording(pool: Any, path: Path, *, batch_size: int = 500) -> IngestStats:
    from streams.storage import upsert_trade_events, upsert_transactions

    stats = IngestStats()
    batch: list[tuple[ParsedTransaction, dict[str, Any]]] = []

    async def flush() -> None:
        if not batch:
            return
        async with pool.acquire() as conn, conn.transaction():
            await upsert_transactions(conn, batch)
            await upsert_trade_events(conn, [t for parsed, _ in batch for t in parsed.trades])
        batch.clear()

    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = unwrap_result(orjson.loads(line))
                parsed = parse_transaction(raw)
            except (orjson.JSONDecodeError, ParseError) as exc:
                stats.bad_lines += 1
                log.warning("recording_line_unreadable", path=str(path), line=number, error=str(exc))
                continue
            stats.transactions += 1
            stats.failed_transactions += parsed.failed
            stats.trades += len(parsed.trades)
            for trade in parsed.trades:
                stats.venues[trade.program or "unknown"] += 1
            batch.append((parsed, dict(raw)))
            if len(batch) >= batch_size:
                await flush()
    await flush()
    return stats

"""`PricePoller`: Jupiter Price v3 for the mints the shards may watch, handed to the ingest as views.

Runs inside `oof:ingest` beside a live source (`jupiter.enabled`). Every `price_poll_s`
it asks Jupiter for SOL's price and those of the mints the shards watch (`WatchTracker`:
held positions, open S2E/BHD/RUG watches), at most `max_mints` per poll — more are
polled in turn — and keeps the latest price per mint until the ingest takes them.
`take(slot)` turns them into `core.external_prices` views for the slot the assembler is
building: a price joins event time where the stream is, never at a wall-clock time, and
from there it is input like any transaction (deduplicated, checkpointed, replayed after
a crash). In a stream with nothing buffered the prices wait for its next transaction.
A failed poll is logged and counted; the next one goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from actors.metrics import pipeline_metrics
from core.errors import OofError
from core.external_prices import price_view
from core.mints import SOL_MINT, STABLECOINS
from core.models import ParsedTransaction
from streams.jupiter import JupiterPrice

__all__ = ["PricePoller"]

log = structlog.get_logger("oof.ingest")


class PricePoller:
    def __init__(self, client: Any, mints: Callable[[], Iterable[str]], *, interval_s: float, max_mints: int) -> None:
        if max_mints < 1:
            raise ValueError("max_mints must be at least 1")
        self.client, self.mints, self.interval_s, self.max_mints = client, mints, interval_s, max_mints
        self.pending: dict[str, JupiterPrice] = {}  # mint -> the latest price not yet offered
        self.stats = {"polls": 0, "poll_errors": 0, "prices": 0, "offered": 0}
        self._offset = 0  # where the next poll starts when there are more mints than max_mints
        self._seq = time.time_ns() // 1_000  # observation numbers stay unique across ingest restarts

    def choose(self) -> list[str]:
        """SOL, then up to `max_mints - 1` watched mints (stablecoins are $1 here), rotating through the rest."""
        watched = sorted(set(self.mints()) - STABLECOINS - {SOL_MINT})
        budget = self.max_mints - 1
        if len(watched) > budget:
            start = self._offset % len(watched)
            watched = (watched[start:] + watched[:start])[:budget]
            self._offset = start + budget
        return [SOL_MINT, *watched]

    async def poll_once(self) -> int:
        """One poll; returns how many prices came back (0 after a failure, which is logged)."""
        chosen = self.choose()
        self.stats["polls"] += 1
        try:
            prices = await self.client.prices(chosen)
        except OofError as exc:
            self.stats["poll_errors"] += 1
            pipeline_metrics().external_prices.inc(tags={"source": "jupiter", "outcome": "error"})
            log.warning("jupiter_poll_failed", mints=len(chosen), reason=exc.internal or exc.detail)
            return 0
        self.pending.update(prices)
        self.stats["prices"] += len(prices)
        if prices:  # (a Ray counter refuses an increment of 0)
            pipeline_metrics().external_prices.inc(len(prices), tags={"source": "jupiter", "outcome": "priced"})
        log.info("jupiter_polled", mints=len(chosen), priced=len(prices))
        return len(prices)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:  # noqa: BLE001 - a bug in one poll must not end polling for the life of the ingest
                self.stats["poll_errors"] += 1
                log.exception("jupiter_poll_crashed")
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
            except TimeoutError:
                pass

    def take(self, slot: int) -> list[ParsedTransaction]:
        """The pending prices as views of `slot`, one per mint (mint order), and forget them."""
        views = []
        for mint in sorted(self.pending):
            price = self.pending[mint]
            self._seq += 1
            view = price_view(mint, price.usd_price, slot=slot, seq=self._seq, decimals=price.decimals,
                              block_id=price.block_id)
            if view is not None:
                views.append(view)
        self.pending.clear()
        self.stats["offered"] += len(views)
        return views

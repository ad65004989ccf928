"""Moment cards: rendered once per moment version, kept in an object store, served with an ETag.

A card's key and ETag derive from the moment's content (its wire form, `updated_at`
included) and the renderer version, so an updated moment gets a new key and re-renders,
while repeated requests for an unchanged one only read the store.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from core.codec import moment_to_dict
from core.models import Moment
from deployments.cards.render import CARD_SIZE, render_card
from deployments.cards.store import LocalFileStore, ObjectStore, S3Store
from deployments.linking import ConnectionSource
from streams.storage import Candle, load_candles

__all__ = [
    "CARD_SIZE",
    "RENDER_VERSION",
    "Card",
    "CardService",
    "LocalFileStore",
    "ObjectStore",
    "Renderer",
    "S3Store",
    "card_version",
    "render_card",
]

RENDER_VERSION = 1  # bump when the drawing changes, so stored cards re-render
Renderer = Callable[[Moment, Sequence[Candle]], bytes]


@dataclass(frozen=True, slots=True)
class Card:
    png: bytes
    etag: str  # quoted, ready for the header
    key: str


def card_version(moment: Moment) -> str:
    """A digest of everything drawn on the card (the moment's content and the renderer version)."""
    content = orjson.dumps(moment_to_dict(moment), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(content + b"|v%d" % RENDER_VERSION, digest_size=12).hexdigest()


class CardService:
    """Fetch-or-render; concurrent requests for the same uncached card share one render."""

    def __init__(
        self,
        db: ConnectionSource,
        store: ObjectStore,
        *,
        render: Renderer = render_card,
        chart_margin_s: int = 30 * 60,
        chart_max_s: int = 10 * 86_400,
    ) -> None:
        self._db = db
        self._store = store
        self._render = render
        self._margin = chart_margin_s
        self._max_span = chart_max_s
        self._inflight: dict[str, asyncio.Future[bytes]] = {}

    @staticmethod
    def key_for(moment: Moment) -> str:
        return f"cards/moment/{moment.id}/{moment.updated_at}-{card_version(moment)}.png"

    async def card(self, moment: Moment) -> Card:
        key = self.key_for(moment)
        etag = f'"{card_version(moment)}"'
        png = await self._store.get(key)
        if png is None:
            png = await self._render_once(key, moment)
        return Card(png, etag, key)

    async def _render_once(self, key: str, moment: Moment) -> bytes:
        if (pending := self._inflight.get(key)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # The request that was rendering went away first: render it ourselves.
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            candles = await self._candles(moment)
            # Drawing is CPU work: keep it off the event loop so streams and probes stay live.
            png = await asyncio.to_thread(self._render, moment, candles)
            await self._store.put(key, png, "image/png")
            future.set_result(png)
            return png
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    async def _candles(self, moment: Moment) -> list[Candle]:
        until = moment.window_end + self._margin
        since = max(moment.window_start - self._margin, until - self._max_span)
        async with self._db.acquire() as conn:
            return await load_candles(conn, moment.mint, since - since % 60, until)

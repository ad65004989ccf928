"""`LocalJupiter`: Jupiter's Price v3 endpoint on 127.0.0.1, shaped as docs/SOLANA_NOTES.md §5 shows.

    async with LocalJupiter({mint: "0.5"}) as jup:       # prices as JSON number texts
        client = JupiterClient(jup.base_url, api_key="k")
        jup.fail_next(2, 429, retry_after="0.05")        # the next two requests are refused
        jup.prices[mint] = "0.4"                         # change a price between polls

`entries` overrides whole entries (malformed ones, nulls); `raw_body` sends a body
verbatim. Every request is recorded (`requests`: the ids asked, and the x-api-key sent).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Self

from aiohttp import web

__all__ = ["LocalJupiter", "Seen"]


@dataclass(frozen=True)
class Seen:
    ids: tuple[str, ...]
    api_key: str | None


class LocalJupiter:
    def __init__(self, prices: dict[str, str] | None = None, *, block_id: int = 348_004_023) -> None:
        self.prices: dict[str, str] = dict(prices or {})
        self.entries: dict[str, str] = {}  # mint -> verbatim JSON of its entry (wins over `prices`)
        self.raw_body: str | None = None
        self.block_id = block_id
        self.requests: list[Seen] = []
        self._failures: list[tuple[int, str | None]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, times: int, status: int, *, retry_after: str | None = None) -> None:
        self._failures += [(status, retry_after)] * times

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/price/v3", self._price)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _price(self, request: web.Request) -> web.Response:
        ids = tuple(i for i in request.query.get("ids", "").split(",") if i)
        self.requests.append(Seen(ids, request.headers.get("x-api-key")))
        if self._failures:
            status, retry_after = self._failures.pop(0)
            headers = {"Retry-After": retry_after} if retry_after else {}
            return web.json_response({"error": "refused"}, status=status, headers=headers)
        if len(ids) > 50:
            return web.json_response({"error": "at most 50 ids"}, status=400)
        if self.raw_body is not None:
            return web.Response(text=self.raw_body, content_type="application/json")
        parts = []
        for mint in ids:
            if mint in self.entries:
                parts.append(f'"{mint}":{self.entries[mint]}')
            elif mint in self.prices:
                parts.append(f'"{mint}":{self._entry(self.prices[mint])}')
        return web.Response(text="{" + ",".join(parts) + "}", content_type="application/json")

    def _entry(self, price: str) -> str:
        # the JSON text carries the price verbatim: the client must read it without a float
        return (f'{{"createdAt":"2024-06-05T08:55:25.527Z","liquidity":621679197.67,"usdPrice":{price},'
                f'"blockId":{self.block_id},"decimals":6,"priceChange24h":1.29}}')

"""`LocalBirdeye`: Birdeye's OHLCV endpoint on 127.0.0.1, shaped as docs/SOLANA_NOTES.md §5 shows.

    async with LocalBirdeye({mint: [(1_750_000_000, "1", "1.2", "0.9", "1.1")]}, api_key="k") as bird:
        client = BirdeyeClient(bird.base_url, api_key="k")
        bird.fail_next(2, 429, retry_after="0.05")   # the next two requests are refused
        bird.refuse(mint)                             # 400 for that mint from now on

Candles are `(unixTime, o, h, l, c)` with prices as JSON number texts (sent verbatim: a client
must read them without a float); `items` adds verbatim JSON items to a mint (malformed ones);
`raw_body` sends a body verbatim. A request answers the mint's items with `unixTime` in
`[time_from, time_to]`, oldest first, at most `page_max` (1000, like Birdeye). A wrong
`X-API-KEY` is a 401, a missing `x-chain` a 400. Every request is recorded (`requests`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Self

from aiohttp import web

__all__ = ["LocalBirdeye", "BirdeyeRequest", "Candle"]

Candle = tuple[int, str, str, str, str]  # (unixTime, o, h, l, c)


@dataclass(frozen=True)
class BirdeyeRequest:
    address: str
    type: str
    time_from: int
    time_to: int
    api_key: str | None
    chain: str | None


class LocalBirdeye:
    def __init__(self, candles: dict[str, list[Candle]] | None = None, *, api_key: str | None = None,
                 page_max: int = 1000) -> None:
        self.candles: dict[str, list[Candle]] = {m: list(c) for m, c in (candles or {}).items()}
        self.items: dict[str, list[tuple[int, str]]] = {}  # mint -> (unixTime, verbatim JSON item)
        self.raw_body: str | None = None
        self.api_key, self.page_max = api_key, page_max
        self.requests: list[BirdeyeRequest] = []
        self._failures: list[tuple[int, str | None]] = []
        self._refused: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, times: int, status: int, *, retry_after: str | None = None) -> None:
        self._failures += [(status, retry_after)] * times

    def refuse(self, mint: str) -> None:
        self._refused.add(mint)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/defi/ohlcv", self._ohlcv)
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

    async def _ohlcv(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            seen = BirdeyeRequest(query["address"], query.get("type", ""), int(query["time_from"]),
                                  int(query["time_to"]), request.headers.get("X-API-KEY"),
                                  request.headers.get("x-chain"))
        except (KeyError, ValueError):
            return web.json_response({"success": False, "message": "bad parameters"}, status=400)
        self.requests.append(seen)
        if self._failures:
            status, retry_after = self._failures.pop(0)
            headers = {"Retry-After": retry_after} if retry_after else {}
            return web.json_response({"success": False, "message": "refused"}, status=status, headers=headers)
        if self.api_key is not None and seen.api_key != self.api_key:
            return web.json_response({"success": False, "message": "Unauthorized"}, status=401)
        if not seen.chain or seen.address in self._refused:
            return web.json_response({"success": False, "message": "address is invalid format"}, status=400)
        if self.raw_body is not None:
            return web.Response(text=self.raw_body, content_type="application/json")
        rows = [(t, self._item(seen.address, seen.type, t, o, h, l, c))
                for t, o, h, l, c in self.candles.get(seen.address, ())]  # noqa: E741
        rows += self.items.get(seen.address, [])
        page = sorted(row for row in rows if seen.time_from <= row[0] <= seen.time_to)[: self.page_max]
        return web.Response(text='{"success":true,"data":{"items":[' + ",".join(text for _, text in page) + "]}}",
                            content_type="application/json")

    @staticmethod
    def _item(mint: str, kind: str, t: int, o: str, h: str, l: str, c: str) -> str:  # noqa: E741
        return f'{{"address":"{mint}","o":{o},"h":{h},"l":{l},"c":{c},"v":1234.5,"type":"{kind}","unixTime":{t}}}'

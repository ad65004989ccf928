"""Birdeye OHLCV over HTTP: historical USD candles of a mint, paged, rate-capped and retried.

`GET {base}/defi/ohlcv?address=<mint>&type=15m&time_from=<s>&time_to=<s>` with `X-API-KEY`
and `x-chain` answers `{"success": true, "data": {"items": [{"address", "o", "h", "l", "c",
"v", "type", "unixTime"}]}}`, at most 1000 candles per call, oldest first: a full page is
followed by the next, from one second after its newest candle (docs/SOLANA_NOTES.md §5).
Prices are read straight into `Decimal` from the JSON text (never through a float). An item
that is not a candle (a price that is not positive and finite, a high under its low, open or
close, another mint's address, no integer `unixTime`) is skipped and counted (`malformed`).
Requests spend from one `RateCap` of `requests_per_minute`; 429, 5xx and transport errors are
retried with backoff and jitter, honouring `Retry-After` (`streams.retry.Retrier`).

Failures are `ExternalServiceError`s: `CandlesRefused` when Birdeye refuses one request
(400/404/422: that mint has no candles), a plain one for everything else (bad key, a body
that is not an OHLCV answer, retries exhausted). `fetch_windows` spends a job's request
budget over its mints in order; what a failure means for the job is the caller's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Self

import httpx
import structlog

from core.errors import ExternalServiceError
from core.market_history import OhlcvCandle
from core.settings import HistoryPricesSettings
from streams.retry import Retrier, Transient, retry_after_seconds
from streams.rpc import RateCap

__all__ = ["BirdeyeClient", "CandlesRefused", "HistoryFetch", "fetch_windows", "requests_needed", "SERVICE",
           "PAGE_MAX"]

SERVICE: Final = "birdeye"
PAGE_MAX: Final = 1000  # candles per call
_MAX_PAGES: Final = 10_000  # a server that keeps answering full pages cannot loop forever
log = structlog.get_logger("oof.history_prices")


class CandlesRefused(ExternalServiceError):
    """Birdeye refused one OHLCV request (400/404/422): no candles for that mint, others may have some."""


class BirdeyeClient:
    """Use as `async with BirdeyeClient(...) as birdeye: await birdeye.ohlcv(mint, time_from, time_to)`."""

    def __init__(self, base_url: str, *, api_key: str, chain: str = "solana", candle: str = "15m",
                 candle_s: int = 900, timeout_s: float = 10.0, requests_per_minute: int = 60, max_attempts: int = 3,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 10.0, rate_cap: RateCap | None = None) -> None:
        self.url = f"{base_url.rstrip('/')}/defi/ohlcv"
        self.candle, self.candle_s = candle, candle_s
        self.rate = rate_cap or RateCap(requests_per_minute, 60.0)
        self.malformed = 0  # items skipped as unreadable
        self._retrier = Retrier(SERVICE, self.rate, attempts=max_attempts, backoff_initial_s=backoff_initial_s,
                                backoff_max_s=backoff_max_s, log_event="birdeye_retry")
        headers = {"X-API-KEY": api_key, "x-chain": chain, "accept": "application/json"}
        self._http = httpx.AsyncClient(timeout=timeout_s, headers=headers)

    @classmethod
    def from_settings(cls, settings: HistoryPricesSettings, **overrides: Any) -> Self:
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        options: dict[str, Any] = {"api_key": key, "chain": settings.chain, "candle": settings.candle,
                                   "candle_s": settings.candle_s, "timeout_s": settings.timeout_s,
                                   "requests_per_minute": settings.requests_per_minute,
                                   "max_attempts": settings.max_attempts}
        return cls(settings.base_url, **(options | overrides))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def requests(self) -> int:
        """HTTP requests sent, retries included."""
        return self._retrier.sent

    async def ohlcv(self, mint: str, time_from: int, time_to: int) -> list[OhlcvCandle]:
        """`mint`'s candles starting within `[time_from, time_to]`, oldest first, each start once."""
        out: dict[int, OhlcvCandle] = {}
        start = time_from
        for _ in range(_MAX_PAGES):
            items = await self._page(mint, start, time_to)
            newest = None
            for candle in self._read(mint, items):
                if time_from <= candle.start <= time_to:
                    out.setdefault(candle.start, candle)
                newest = candle.start if newest is None else max(newest, candle.start)
            if len(items) < PAGE_MAX:
                break
            start = newest + 1 if newest is not None and newest >= start else start + PAGE_MAX * self.candle_s
            if start > time_to:
                break
        return [out[t] for t in sorted(out)]

    async def _page(self, mint: str, time_from: int, time_to: int) -> list[Any]:
        params = {"address": mint, "type": self.candle, "time_from": str(time_from), "time_to": str(time_to)}

        async def attempt() -> list[Any]:
            try:
                response = await self._http.get(self.url, params=params)
            except httpx.TransportError as exc:
                raise Transient(f"{type(exc).__name__}: {exc}") from exc
            status = response.status_code
            if status == 429 or status >= 500:
                raise Transient(f"HTTP {status}", retry_after_seconds(response.headers.get("retry-after")))
            if status in (400, 404, 422):
                raise CandlesRefused(SERVICE, internal=f"defi/ohlcv {mint}: HTTP {status}: {response.text[:300]}")
            if status >= 300:
                raise ExternalServiceError(SERVICE, internal=f"defi/ohlcv: HTTP {status}: {response.text[:300]}")
            try:  # parse_float: exact decimals from the JSON text, never a binary float
                body = json.loads(response.content, parse_float=Decimal, parse_constant=_no_constant)
            except ValueError as exc:
                raise ExternalServiceError(SERVICE, internal=f"defi/ohlcv: invalid JSON: {exc}") from None
            return _items(body)

        return await self._retrier.call("defi/ohlcv", 1, attempt)

    def _read(self, mint: str, items: list[Any]) -> list[OhlcvCandle]:
        out = []
        for item in items:
            candle = _candle(mint, self.candle_s, item)
            if candle is None:
                self.malformed += 1
                log.warning("birdeye_candle_malformed", mint=mint, item=str(item)[:200])
                continue
            out.append(candle)
        return out


def _items(body: Any) -> list[Any]:
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(body, Mapping) or body.get("success") is not True or not isinstance(data, Mapping):
        raise ExternalServiceError(SERVICE, internal=f"defi/ohlcv: not an OHLCV answer: {str(body)[:300]}")
    items = data.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise ExternalServiceError(SERVICE, internal=f"defi/ohlcv: items is a {type(items).__name__}")
    return items


def _candle(mint: str, seconds: int, item: Any) -> OhlcvCandle | None:
    if not isinstance(item, Mapping) or item.get("address", mint) != mint:
        return None
    start = item.get("unixTime")
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        return None
    o, h, l, c = (_price(item.get(key)) for key in ("o", "h", "l", "c"))  # noqa: E741
    if o is None or h is None or l is None or c is None or h < max(o, l, c) or l > min(o, h, c):
        return None
    return OhlcvCandle(mint, start, seconds, o, h, l, c)


def _price(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        return None
    return price if price.is_finite() and price > 0 else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a price")


def requests_needed(windows: list[tuple[int, int]], candle_s: int) -> int:
    """Requests `ohlcv` makes over `windows` when every page but the last is full."""
    return sum(-(-(hi - lo + 1) // (PAGE_MAX * candle_s)) for lo, hi in windows)


@dataclass
class HistoryFetch:
    """What `fetch_windows` got: candles per priced mint, and which mints were refused or over budget."""

    candles: dict[str, list[OhlcvCandle]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(c) for c in self.candles.values())


async def fetch_windows(client: BirdeyeClient, windows: Mapping[str, list[tuple[int, int]]],
                        max_requests: int) -> HistoryFetch:
    """Every mint's windows in order while the budget lasts (estimated up front: `requests_needed`,
    so which mints are skipped depends on the windows only). A refused mint is counted and passed
    over; any other failure propagates."""
    out, budget = HistoryFetch(), max_requests
    for mint, spans in windows.items():
        need = requests_needed(spans, client.candle_s)
        if need > budget:
            out.skipped.append(mint)
            continue
        budget -= need
        try:
            candles: list[OhlcvCandle] = []
            for lo, hi in spans:
                candles += await client.ohlcv(mint, lo, hi)
        except CandlesRefused as exc:
            log.info("birdeye_mint_refused", mint=mint, reason=exc.internal)
            out.refused.append(mint)
            continue
        out.candles[mint] = candles
    return out

"""Jupiter Price v3 over HTTP: current USD prices of many mints, 50 per request, capped and retried.

`GET {base}/price/v3?ids=a,b,…` answers `{mint: {"usdPrice", "blockId", "decimals", …}}`;
a mint that fails Jupiter's heuristics is simply absent ("no price"), never an error.
Prices are read straight into `Decimal` from the JSON text (never through a float). An
entry that is not a positive finite price is skipped and counted (`malformed`), never fatal.
Jupiter counts requests per account over a sliding 60 s window, every endpoint in one
bucket, so the client spends from one `RateCap` of `requests_per_minute`; 429 and 5xx are
retried with exponential backoff and jitter (a `Retry-After` is honoured, up to a minute).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Self

import httpx
import structlog

from core.errors import ExternalServiceError
from core.settings import JupiterSettings
from streams.retry import Retrier, Transient, retry_after_seconds
from streams.rpc import RateCap

__all__ = ["JupiterPrice", "JupiterClient", "SERVICE", "IDS_PER_REQUEST"]

SERVICE: Final = "jupiter"
IDS_PER_REQUEST: Final = 50  # Price v3 takes at most 50 ids
log = structlog.get_logger("oof.jupiter")


@dataclass(frozen=True, slots=True)
class JupiterPrice:
    """One mint's price as Jupiter reported it; `block_id` is the slot Jupiter priced it at."""

    mint: str
    usd_price: Decimal
    block_id: int | None
    decimals: int | None


class JupiterClient:
    """Use as `async with JupiterClient(...) as jupiter: await jupiter.prices(mints)`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 5.0,
        requests_per_minute: int = 60,
        max_attempts: int = 3,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        rate_cap: RateCap | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/price/v3"
        self.rate = rate_cap or RateCap(requests_per_minute, 60.0)
        self.malformed = 0  # price entries skipped as unreadable
        self._retrier = Retrier(SERVICE, self.rate, attempts=max_attempts, backoff_initial_s=backoff_initial_s,
                                backoff_max_s=backoff_max_s, log_event="jupiter_retry")
        headers = {"x-api-key": api_key} if api_key else {}
        self._http = httpx.AsyncClient(timeout=timeout_s, headers=headers)

    @classmethod
    def from_settings(cls, settings: JupiterSettings, **overrides: Any) -> Self:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        options: dict[str, Any] = {"api_key": key, "timeout_s": settings.timeout_s,
                                   "requests_per_minute": settings.requests_per_minute}
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

    async def prices(self, mints: Iterable[str]) -> dict[str, JupiterPrice]:
        """mint -> price for every asked mint Jupiter prices (absent: no price), 50 ids per request."""
        unique = list(dict.fromkeys(mints))
        out: dict[str, JupiterPrice] = {}
        for start in range(0, len(unique), IDS_PER_REQUEST):
            chunk = unique[start : start + IDS_PER_REQUEST]
            out.update(self._read(chunk, await self._get(chunk)))
        return out

    async def _get(self, ids: list[str]) -> Any:
        async def attempt() -> Any:
            try:
                response = await self._http.get(self.url, params={"ids": ",".join(ids)})
            except httpx.TransportError as exc:
                raise Transient(f"{type(exc).__name__}: {exc}") from exc
            status = response.status_code
            if status == 429 or status >= 500:
                raise Transient(f"HTTP {status}", retry_after_seconds(response.headers.get("retry-after")))
            if status >= 400:
                raise ExternalServiceError(SERVICE, internal=f"price/v3: HTTP {status}: {response.text[:500]}")
            try:  # parse_float: exact decimals from the JSON text, never a binary float
                return json.loads(response.content, parse_float=Decimal, parse_constant=_no_constant)
            except ValueError as exc:
                raise ExternalServiceError(SERVICE, internal=f"price/v3: invalid JSON: {exc}") from None

        return await self._retrier.call("price/v3", 1, attempt)

    def _read(self, ids: list[str], body: Any) -> dict[str, JupiterPrice]:
        if not isinstance(body, Mapping):
            raise ExternalServiceError(SERVICE, internal=f"price/v3: expected an object, got {type(body).__name__}")
        out: dict[str, JupiterPrice] = {}
        for mint in ids:
            entry = body.get(mint)
            if entry is None:
                continue  # no price for this mint: Jupiter's answer, not an error
            price = _price(entry)
            if price is None:
                self.malformed += 1
                log.warning("jupiter_price_malformed", mint=mint, entry=str(entry)[:200])
                continue
            block, decimals = entry.get("blockId"), entry.get("decimals")
            out[mint] = JupiterPrice(mint, price, block if _is_int(block) else None,
                                     decimals if _is_int(decimals) and 0 <= decimals <= 30 else None)
        return out


def _price(entry: Any) -> Decimal | None:
    if not isinstance(entry, Mapping):
        return None
    value = entry.get("usdPrice")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        return None
    return price if price.is_finite() and price > 0 else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a price")

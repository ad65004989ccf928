"""The `history_prices` section: where an analyze job gets the market's prices of the time.

Jupiter has no historical prices (docs/SOLANA_NOTES.md §5), so a job's market prices come
from historical OHLCV candles: `provider: birdeye` (`GET {base_url}/defi/ohlcv`, `X-API-KEY`,
`x-chain`), or `none` (a job sees only the prices of its wallets' own swaps). Re-exported
by `core.settings`, which is where callers import it from; `CANDLE_SECONDS` is read by
`core.market_history` (where a candle's prices go in event time) and the client.
"""

from __future__ import annotations

from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["HistoryPricesSettings", "CANDLE_SECONDS", "CandleType"]

# Birdeye's candle types of 15 minutes and more. Shorter candles are refused: a candle's four
# prices are placed a quarter of a candle apart (core.market_history), so at 15 min one
# BAD_ROUTE reference window (±60 s by default) holds at most one of them, and candles alone
# never make a reference (3 ticks needed).
CandleType = Literal["15m", "30m", "1H", "2H", "4H", "6H", "8H", "12H", "1D"]
CANDLE_SECONDS: dict[str, int] = {"15m": 900, "30m": 1_800, "1H": 3_600, "2H": 7_200, "4H": 14_400,
                                  "6H": 21_600, "8H": 28_800, "12H": 43_200, "1D": 86_400}


class HistoryPricesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["none", "birdeye"] = Field(
        "none", description="historical OHLCV for analyze jobs: none (only the wallets' own swaps) | birdeye")
    base_url: str = Field("https://public-api.birdeye.so", description="Birdeye public API base")
    api_key: SecretStr | None = Field(None, description="Birdeye API key, sent as X-API-KEY (required by birdeye)")
    chain: str = Field("solana", min_length=1, description="sent as x-chain")
    candle: CandleType = Field("15m", description="candle type asked for (15m or coarser)")
    margin_s: int = Field(3_600, ge=0, le=7 * 86_400,
                          description="candles from this long before each trade (the price the trade started from)")
    requests_per_minute: int = Field(60, ge=1, description="the provider's per-account cap")
    max_requests_per_job: int = Field(200, ge=1, description="a job's budget of OHLCV requests (1000 candles each);"
                                                            " mints beyond it go unpriced, counted")
    timeout_s: float = Field(10.0, gt=0, description="give up on one OHLCV call after this long")
    max_attempts: int = Field(3, ge=1, le=10, description="tries of one request (429, 5xx, transport errors)")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https"):
            raise ValueError("must be a http:// or https:// URL")
        if not parts.hostname:
            raise ValueError("URL has no host")
        return value

    @model_validator(mode="after")
    def _key_for_birdeye(self) -> Self:
        if self.provider == "birdeye" and (self.api_key is None or not self.api_key.get_secret_value()):
            raise ValueError("history_prices.provider is birdeye but history_prices.api_key is not set")
        return self

    @property
    def enabled(self) -> bool:
        return self.provider != "none"

    @property
    def candle_s(self) -> int:
        return CANDLE_SECONDS[self.candle]

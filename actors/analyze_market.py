"""An analyze job's market prices: historical candles of the mints its wallets traded, as views.

`MarketPrices.views(span)` plans the windows (`core.market_history.price_windows`), fetches
them from the provider (`streams.history_prices`, one rate cap per runner, a request budget
per job) and places every candle's prices in the job's event time (`market_views`). It never
fails the job: when the provider fails (anything but a refused mint) the job gets no market
prices at all — never a mix that depends on when the failure came — and `progress` says why.

`progress` (the job's `market` entry): `provider`, `candle`, `status` (`off`: no provider;
`no_trades`: nothing to price; `priced`: every mint asked got its candles; `partial`: some
were refused or over the request budget; `unavailable`: the provider failed, with `error`),
`mints` (asked), `mints_priced`, `mints_refused`, `mints_skipped` (over budget), `candles`,
`prices` (views added), `malformed` (candles skipped), `requests` (retries included).
`market_items` is the whole step over a list of results (what tests feed the in-process engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import structlog

from core.errors import ExternalServiceError
from core.market_history import JobSpan, SlotClock, market_views, merge_by_slot, price_windows, window_after_s
from core.models import ParsedTransaction
from core.settings import HistoryPricesSettings
from core.thresholds import Thresholds
from streams.history_prices import BirdeyeClient, fetch_windows
from streams.rpc import RateCap

__all__ = ["MarketPrices", "market_items"]

log = structlog.get_logger("oof.analyze")


class MarketPrices:
    def __init__(self, settings: HistoryPricesSettings, thresholds: Thresholds,
                 client: Callable[[RateCap], BirdeyeClient] | None = None) -> None:
        self.settings, self.thresholds = settings, thresholds
        self.rate = RateCap(settings.requests_per_minute, 60.0)  # the provider counts per account: one per runner
        self._client = client or (lambda rate: BirdeyeClient.from_settings(settings, rate_cap=rate))

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def span(self, wallets: Iterable[str]) -> JobSpan | None:
        """What to collect from the fetched transactions; None when there is no provider."""
        return JobSpan(wallets) if self.enabled else None

    def off(self) -> dict[str, Any]:
        return {"provider": self.settings.provider, "status": "off"}

    async def views(self, span: JobSpan) -> tuple[list[ParsedTransaction], dict[str, Any]]:
        """The job's market prices as views in (slot, signature) order, and its `market` progress."""
        cfg = self.settings
        windows = price_windows(span.trades, margin_s=cfg.margin_s, after_s=window_after_s(self.thresholds),
                                candle_s=cfg.candle_s)
        progress: dict[str, Any] = {"provider": cfg.provider, "candle": cfg.candle, "mints": len(windows)}
        if not windows:
            return [], {**progress, "status": "no_trades"}
        client = self._client(self.rate)
        try:
            fetched = await fetch_windows(client, windows, cfg.max_requests_per_job)
        except ExternalServiceError as exc:
            log.warning("analyze_market_prices_unavailable", reason=exc.internal or exc.detail)
            return [], {**progress, "status": "unavailable", "error": f"{exc.detail}: the job ran on its wallets'"
                        " own swap prices only", "requests": client.requests}
        finally:
            await client.aclose()
        views = market_views(fetched.candles, SlotClock(span.pairs.items()), span.decimals)
        complete = not fetched.refused and not fetched.skipped
        return views, {**progress, "status": "priced" if complete else "partial",
                       "mints_priced": len(fetched.candles), "mints_refused": len(fetched.refused),
                       "mints_skipped": len(fetched.skipped), "candles": fetched.count, "prices": len(views),
                       "malformed": client.malformed, "requests": client.requests}


async def market_items(results: Sequence[Mapping[str, Any]], wallets: Iterable[str],
                       market: MarketPrices) -> tuple[list[Any], dict[str, Any]]:
    """Slot-ordered `results` with the market's prices merged in, and the `market` progress."""
    span = market.span(wallets)
    if span is None:
        return list(results), market.off()
    for raw in results:
        span.add(raw)
    views, progress = await market.views(span)
    return merge_by_slot(results, views), progress

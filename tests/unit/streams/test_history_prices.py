"""The Birdeye OHLCV client against a local Birdeye endpoint over a real socket."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

import streams.history_prices
from core.errors import ExternalServiceError
from core.market_history import OhlcvCandle
from core.settings import HistoryPricesSettings
from streams.history_prices import BirdeyeClient, CandlesRefused, fetch_windows, requests_needed
from streams.localnode.birdeye import LocalBirdeye
from streams.rpc import RateCap
from tests.unit.streams.test_ratecap import FakeClock

FAST = {"api_key": "bird-key", "backoff_initial_s": 0.01, "backoff_max_s": 0.05}
T0 = 1_750_000_500  # not on a candle boundary: the window's edges are the caller's


def _flat(mint: str, start: int, n: int, price: str = "1") -> dict[str, list[tuple[int, str, str, str, str]]]:
    return {mint: [(start + 900 * k, price, price, price, price) for k in range(n)]}


async def test_candles_are_exact_decimals_inside_the_window_oldest_first_with_key_and_chain() -> None:
    tiny = "0.000012345678901234567891"  # beyond a float's digits
    candles = {"Tok": [(T0 + 900, "2", "3", "1.5", "2.5"), (T0, tiny, "1.3e-5", "1E-5", "0.0000121"),
                       (T0 + 1_800, "9", "9", "9", "9")]}
    async with LocalBirdeye(candles, api_key="bird-key") as bird:
        settings = HistoryPricesSettings(provider="birdeye", base_url=bird.base_url,
                                         api_key="bird-key")  # type: ignore[arg-type]
        async with BirdeyeClient.from_settings(settings, backoff_initial_s=0.01) as client:
            got = await client.ohlcv("Tok", T0, T0 + 1_799)
    assert got == [OhlcvCandle("Tok", T0, 900, D(tiny), D("0.000013"), D("0.00001"), D("0.0000121")),
                   OhlcvCandle("Tok", T0 + 900, 900, D(2), D(3), D("1.5"), D("2.5"))]
    (seen,) = bird.requests
    assert (seen.address, seen.type, seen.time_from, seen.time_to) == ("Tok", "15m", T0, T0 + 1_799)
    assert (seen.api_key, seen.chain) == ("bird-key", "solana")
    assert client.requests == 1 and client.malformed == 0


@pytest.mark.parametrize(("n", "page_max", "pages"), [(2_500, 1000, 3), (2_000, 1000, 3), (7, 3, 3), (999, 1000, 1)])
async def test_more_candles_than_a_page_are_paged_from_the_newest_each_once(n: int, page_max: int, pages: int,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams.history_prices, "PAGE_MAX", page_max)  # (a small page: the same walk)
    async with LocalBirdeye(_flat("Tok", T0, n), page_max=page_max) as bird:
        async with BirdeyeClient(bird.base_url, **FAST) as client:
            got = await client.ohlcv("Tok", T0, T0 + 900 * n)
    assert [c.start for c in got] == [T0 + 900 * k for k in range(n)]
    assert len(bird.requests) == pages  # a full page asks for the next (an exactly full last one: one empty more)
    assert [r.time_from for r in bird.requests[1:]] == [T0 + 900 * page_max * k - 899 for k in range(1, pages)]


async def test_malformed_items_are_skipped_and_counted_never_fatal() -> None:
    async with LocalBirdeye(_flat("Tok", T0, 2, "1.5")) as bird:
        bird.items["Tok"] = [(T0 + 10, text) for text in (
            "null", "[1]", '{"o":1,"h":1,"l":1,"c":1}',  # no unixTime
            f'{{"o":"1","h":1,"l":1,"c":1,"unixTime":{T0 + 10}}}',  # a price as a string
            f'{{"o":1,"h":0.5,"l":1,"c":1,"unixTime":{T0 + 10}}}',  # high under the rest
            f'{{"o":1,"h":2,"l":1.5,"c":1,"unixTime":{T0 + 10}}}',  # low over the open
            f'{{"o":-1,"h":1,"l":1,"c":1,"unixTime":{T0 + 10}}}',
            f'{{"o":true,"h":1,"l":1,"c":1,"unixTime":{T0 + 10}}}',
            f'{{"address":"Other","o":1,"h":1,"l":1,"c":1,"unixTime":{T0 + 10}}}',
            f'{{"o":1,"h":1,"l":1,"c":1,"unixTime":"{T0 + 10}"}}')]
        bird.items["Tok"].append((T0 + 20, f'{{"o":4,"h":5,"l":3,"c":4,"unixTime":{T0 + 20}}}'))  # ints are prices
        async with BirdeyeClient(bird.base_url, **FAST) as client:
            got = await client.ohlcv("Tok", T0, T0 + 900)
    assert [(c.start, c.high) for c in got] == [(T0, D("1.5")), (T0 + 20, D(5)), (T0 + 900, D("1.5"))]
    assert client.malformed == 10


async def test_429_and_5xx_are_retried_honouring_retry_after_then_given_up() -> None:
    async with LocalBirdeye(_flat("Tok", T0, 3)) as bird:
        bird.fail_next(1, 429, retry_after="0.05")
        bird.fail_next(1, 503)
        async with BirdeyeClient(bird.base_url, max_attempts=3, **FAST) as client:
            assert len(await client.ohlcv("Tok", T0, T0 + 3_000)) == 3
            assert client.requests == 3
            bird.fail_next(3, 502)
            with pytest.raises(ExternalServiceError) as exc_info:
                await client.ohlcv("Tok", T0, T0 + 3_000)
    assert exc_info.value.status == 503 and not isinstance(exc_info.value, CandlesRefused)
    assert "502" not in exc_info.value.detail  # the client-safe detail names the service only


async def test_a_refused_mint_a_bad_key_and_answers_that_are_not_ohlcv_are_errors() -> None:
    async with LocalBirdeye(_flat("Tok", T0, 1), api_key="right") as bird:
        bird.refuse("Bad")
        async with BirdeyeClient(bird.base_url, api_key="right", backoff_initial_s=0.01) as client:
            with pytest.raises(CandlesRefused):
                await client.ohlcv("Bad", T0, T0 + 900)
            for body in ('{"success":false,"message":"x"}', '{"success":true,"data":null}', "[]", "not json",
                         '{"success":true,"data":{"items":{}}}', '{"success":true,"data":{"items":[{"o":NaN}]}}'):
                bird.raw_body = body
                with pytest.raises(ExternalServiceError) as exc_info:
                    await client.ohlcv("Tok", T0, T0 + 900)
                assert not isinstance(exc_info.value, CandlesRefused), body
            bird.raw_body = '{"success":true,"data":{}}'  # no items: no candles
            assert await client.ohlcv("Tok", T0, T0 + 900) == []
        async with BirdeyeClient(bird.base_url, api_key="wrong", backoff_initial_s=0.01) as client:
            with pytest.raises(ExternalServiceError) as exc_info:
                await client.ohlcv("Tok", T0, T0 + 900)
    assert not isinstance(exc_info.value, CandlesRefused) and exc_info.value.service == "birdeye"


async def test_fetch_windows_spends_the_budget_in_order_and_passes_refused_mints_over() -> None:
    candles = {**_flat("A", T0, 1_500), **_flat("B", T0, 10), **_flat("C", T0, 10), **_flat("D", T0, 10)}
    windows = {"A": [(T0, T0 + 900 * 1_499)], "Bad": [(T0, T0 + 900)],
               "B": [(T0, T0 + 900 * 5), (T0 + 900 * 7, T0 + 900 * 9)], "C": [(T0, T0 + 900 * 9)], "D": [(T0, T0 + 900)]}
    assert requests_needed(windows["A"], 900) == 2 and requests_needed(windows["B"], 900) == 2
    async with LocalBirdeye(candles) as bird:
        bird.refuse("Bad")
        async with BirdeyeClient(bird.base_url, **FAST) as client:
            got = await fetch_windows(client, windows, max_requests=5)
    assert list(got.candles) == ["A", "B"] and got.refused == ["Bad"] and got.skipped == ["C", "D"]
    assert len(got.candles["A"]) == 1_500 and [c.start for c in got.candles["B"]] == [
        T0 + 900 * k for k in (0, 1, 2, 3, 4, 5, 7, 8, 9)]
    assert got.count == 1_509


async def test_requests_spend_from_the_rate_cap() -> None:
    clock = FakeClock()
    cap = RateCap(2, 60.0, clock=clock, sleep=clock.sleep)
    async with LocalBirdeye(_flat("Tok", T0, 1)) as bird:
        async with BirdeyeClient(bird.base_url, rate_cap=cap, **FAST) as client:
            for _ in range(3):
                await client.ohlcv("Tok", T0, T0 + 900)
    assert clock.sleeps == [60.0]  # the third request waited for the first one's token

"""The Jupiter Price v3 client against a local Price v3 endpoint over a real socket."""

from __future__ import annotations

import socket
from decimal import Decimal as D

import pytest

from core.errors import ExternalServiceError
from core.mints import SOL_MINT
from core.settings import JupiterSettings
from streams.jupiter import JupiterClient, JupiterPrice
from streams.rpc import RateCap
from streams.localnode.jupiter import LocalJupiter
from tests.unit.streams.test_ratecap import FakeClock

FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05}


async def test_prices_are_exact_decimals_and_unpriced_mints_are_absent() -> None:
    async with LocalJupiter({SOL_MINT: "147.48", "Tok": "0.000012345678901234567891"}) as jup:
        async with JupiterClient(jup.base_url, **FAST) as client:
            prices = await client.prices([SOL_MINT, "Tok", "NoPriceMint"])
    assert prices == {
        SOL_MINT: JupiterPrice(SOL_MINT, D("147.48"), jup.block_id, 6),
        "Tok": JupiterPrice("Tok", D("0.000012345678901234567891"), jup.block_id, 6),  # beyond a float's digits
    }
    assert client.requests == 1 and client.malformed == 0


async def test_ids_go_50_per_request_each_once_with_the_api_key() -> None:
    mints = [f"Mint{i:03d}" for i in range(120)]
    async with LocalJupiter({m: "1" for m in mints}) as jup:
        settings = JupiterSettings(base_url=jup.base_url, api_key="jup-key")  # type: ignore[arg-type]
        async with JupiterClient.from_settings(settings) as client:
            prices = await client.prices(mints + mints[:10])  # repeats are asked once
    assert sorted(prices) == mints
    assert [len(seen.ids) for seen in jup.requests] == [50, 50, 20]
    assert sorted(i for seen in jup.requests for i in seen.ids) == mints
    assert {seen.api_key for seen in jup.requests} == {"jup-key"}


async def test_malformed_entries_are_skipped_and_counted_never_fatal() -> None:
    async with LocalJupiter({"Good": "2.5"}) as jup:
        jup.entries = {"Null": "null", "Str": '{"usdPrice":"1.0"}', "Neg": '{"usdPrice":-1}', "Zero": '{"usdPrice":0}',
                       "NoPrice": '{"blockId":5}', "List": "[1]", "Bool": '{"usdPrice":true}',
                       "IntPrice": '{"usdPrice":3,"blockId":"x","decimals":99}'}
        async with JupiterClient(jup.base_url, **FAST) as client:
            prices = await client.prices(["Good", *jup.entries])
    assert prices == {"Good": JupiterPrice("Good", D("2.5"), jup.block_id, 6),
                      "IntPrice": JupiterPrice("IntPrice", D(3), None, None)}
    assert client.malformed == 6  # Null is Jupiter's "no price", not malformed


async def test_429_and_5xx_are_retried_honouring_retry_after() -> None:
    async with LocalJupiter({"Tok": "1"}) as jup:
        jup.fail_next(1, 429, retry_after="0.05")
        jup.fail_next(1, 503)
        async with JupiterClient(jup.base_url, max_attempts=3, **FAST) as client:
            assert await client.prices(["Tok"]) == {"Tok": JupiterPrice("Tok", D(1), jup.block_id, 6)}
    assert client.requests == 3


@pytest.mark.parametrize(("failure", "status", "requests"), [(500, 503, 3), (401, 502, 1)])
async def test_a_failing_api_becomes_an_external_service_error(failure: int, status: int, requests: int) -> None:
    async with LocalJupiter() as jup:
        jup.fail_next(5, failure)
        async with JupiterClient(jup.base_url, api_key="secret-key", max_attempts=3, **FAST) as client:
            with pytest.raises(ExternalServiceError) as caught:
                await client.prices(["Tok"])
    error = caught.value
    assert error.status == status and error.to_problem()["service"] == "jupiter"
    assert "secret-key" not in str(error.to_problem())
    assert len(jup.requests) == requests  # a client error (4xx) is not retried


async def test_a_body_that_is_not_a_price_object_is_an_external_service_error() -> None:
    async with LocalJupiter() as jup:
        for body in ("not json", "[1, 2]", '{"Tok": {"usdPrice": NaN}}'):
            jup.raw_body = body
            async with JupiterClient(jup.base_url, **FAST) as client:
                with pytest.raises(ExternalServiceError):
                    await client.prices(["Tok"])


async def test_an_unreachable_api_gives_up_with_503() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        async with JupiterClient(f"http://127.0.0.1:{port}", max_attempts=2, **FAST) as client:
            with pytest.raises(ExternalServiceError) as caught:
                await client.prices(["Tok"])
    assert caught.value.status == 503 and client.requests == 2


async def test_requests_spend_from_one_per_minute_budget() -> None:
    clock = FakeClock()
    async with LocalJupiter({f"M{i}": "1" for i in range(150)}) as jup:
        cap = RateCap(2, 60.0, clock=clock, sleep=clock.sleep)
        async with JupiterClient(jup.base_url, rate_cap=cap, **FAST) as client:
            await client.prices([f"M{i}" for i in range(150)])  # three requests, two per minute
    assert clock.now == pytest.approx(60.0) and len(jup.requests) == 3

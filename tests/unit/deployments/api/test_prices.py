"""GET /v1/prices: the pipeline's latest candle and Jupiter's price per mint, validated, cached, degraded."""

from __future__ import annotations

import re
from decimal import Decimal as D
from typing import Any

import pytest

from deployments.auth.testing import JwksServer, RsaTestKey
from streams.storage import Candle, upsert_candles
from streams.localnode.jupiter import LocalJupiter
from tests.unit.deployments.api.conftest import Api, api_settings, new_wallet, running_api

T0 = 1_750_000_020 - 1_750_000_020 % 60


async def _candles(api: Api, mint: str, *closes: str) -> None:
    async with api.deps.pool.acquire() as conn:
        await upsert_candles(conn, [Candle(mint, T0 + 60 * i, D(c), D(c), D(c), D(c), D(1), 1, 100 + i, 100 + i)
                                    for i, c in enumerate(closes)])


async def test_the_latest_stored_close_per_mint_in_the_order_asked(clean: Api) -> None:
    a, b, none = new_wallet(), new_wallet(), new_wallet()
    await _candles(clean, a, "1.5", "1.25")
    await _candles(clean, b, "0.000000123456789")
    response = await clean.get("/v1/prices", params={"mints": f"{b},{none},{a},{b}"}, service=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["jupiter_status"] == "disabled"
    assert body["prices"] == [
        {"mint": b, "stream": {"usd_price": "0.000000123456789", "minute": T0, "last_slot": 100}, "jupiter": None},
        {"mint": none, "stream": None, "jupiter": None},
        {"mint": a, "stream": {"usd_price": "1.25", "minute": T0 + 60, "last_slot": 101}, "jupiter": None},
    ]


@pytest.mark.parametrize(("mints", "field"), [
    ("", "query.mints"), (" , ", "query.mints"), ("not-a-mint", "query.mints[0]"),
    (",".join(str(i) for i in range(51)), "query.mints"),
])
async def test_bad_mint_lists_are_422_naming_the_field(clean: Api, mints: str, field: str) -> None:
    response = await clean.get("/v1/prices", params={"mints": mints}, service=True)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_anonymous_callers_are_refused(clean: Api) -> None:
    assert (await clean.get("/v1/prices", params={"mints": new_wallet()})).status_code == 401


async def test_one_set_is_computed_once_within_the_ttl_whatever_the_order(clean: Api) -> None:
    a, b = new_wallet(), new_wallet()
    await _candles(clean, a, "2")
    runs = clean.deps.cache.stats[("compute", "run")]
    first = (await clean.get("/v1/prices", params={"mints": f"{a},{b}"}, user="price-reader")).json()
    await _candles(clean, a, "2", "3")  # within the TTL the answer does not move
    second = (await clean.get("/v1/prices", params={"mints": f"{b},{a}"}, user="price-reader")).json()
    assert [p["mint"] for p in second["prices"]] == [b, a]
    assert second["prices"][1] == first["prices"][0] and second["prices"][1]["stream"]["usd_price"] == "2"
    assert clean.deps.cache.stats[("compute", "run")] == runs + 1


async def test_jupiter_prices_beside_the_stream_and_unavailable_when_it_fails(
    api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer, tmp_path: Any,
) -> None:
    mint, unpriced = new_wallet(), new_wallet()
    async with LocalJupiter({mint: "0.0421"}) as jup:
        settings = api_settings(api_dsn, jupiter={"enabled": True, "base_url": jup.base_url})
        async with running_api(settings, signing_key, jwks_server.url, cards_dir=tmp_path) as api:
            body = (await api.get("/v1/prices", params={"mints": f"{mint},{unpriced}"}, service=True)).json()
            assert body["jupiter_status"] == "ok"
            assert [p["jupiter"] for p in body["prices"]] == [{"usd_price": "0.0421", "block_id": jup.block_id}, None]
            assert {tuple(seen.ids) for seen in jup.requests} == {(mint, unpriced)}

            jup.fail_next(10, 503)
            other = new_wallet()
            body = (await api.get("/v1/prices", params={"mints": other}, service=True)).json()
            assert body["jupiter_status"] == "unavailable" and body["prices"] == [
                {"mint": other, "stream": None, "jupiter": None}]
            metrics = (await api.get("/metrics", service=True)).text
    for outcome in ("ok", "error"):  # the external-call latency histogram, one call each
        assert re.search(rf'oof_external_call_duration_seconds_count{{outcome="{outcome}",replica="[^"]+",'
                         rf'service="jupiter"}} 1.0', metrics), outcome

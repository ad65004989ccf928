"""A route-class rate limit an operator adds in settings, through the real app (auth → classifier → routes)."""

from __future__ import annotations

from typing import Any

from tests.unit.deployments.api.conftest import api_settings, running_api

PROBLEM = "application/problem+json"


async def test_a_cards_route_class_from_settings_limits_cards_per_user(
    api_dsn: str, signing_key: Any, jwks_server: Any
) -> None:
    settings = api_settings(api_dsn, rate_limits={
        "policies": {"user": {"limit": 10_000}, "cards": {"limit": 2, "window_s": 60, "burst": 0, "key": "user"}},
        "routes": {"cards": ["GET /v1/cards/*"]},
    })
    async with running_api(settings, signing_key, jwks_server.url) as api:
        url = "/v1/cards/moment/s2e_0000.png"  # no such moment: a cheap 404, but a request all the same
        cards = [await api.get(url, user="dora") for _ in range(3)]
        wallets = await api.get("/v1/wallets", user="dora")
        other = await api.get(url, user="erin")
        service = await api.get(url, service=True)  # `key: user`: services are not counted

    assert [r.status_code for r in cards] == [404, 404, 429]
    assert '"cards";q=2;w=60' in cards[0].headers.get_list("ratelimit-policy")
    assert cards[2].headers["content-type"] == PROBLEM and cards[2].json()["violated-policies"] == ["cards"]
    assert cards[2].headers["ratelimit-policy"] == '"cards";q=2;w=60' and int(cards[2].headers["retry-after"]) > 0
    assert wallets.status_code == 200 and "cards" not in wallets.headers["ratelimit-policy"]
    assert other.status_code == 404
    assert service.status_code == 404 and service.headers.get_list("ratelimit-policy") == ['"service";q=6000;w=60']

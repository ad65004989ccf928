"""GET /v1/wallets/{wallet}/summary: aggregates, the OOF score, caching, visibility."""

from __future__ import annotations

import asyncio
import math

from core.models import MomentKind
from tests.unit.deployments.api.conftest import Api, make_moment, new_wallet

T0 = 1_750_000_000


def expected_score(*moments: tuple[float, float]) -> float:
    keep = 1.0
    for severity, usd in moments:
        keep *= 1 - min(0.999999, severity * min(1.0, math.log10(1 + usd) / 4))
    return round(100 * (1 - keep), 2)


async def test_summary_counts_usd_worst_and_score(clean: Api) -> None:
    wallet = new_wallet()
    await clean.add_moments(
        make_moment(wallet, T0, kind=MomentKind.S2E, severity="0.5", usd="99"),
        make_moment(wallet, T0 + 1, kind=MomentKind.S2E, severity="0.25", usd="0.5"),
        make_moment(wallet, T0 + 2, kind=MomentKind.RUG, severity="0.95", usd="20000"),
    )
    body = (await clean.get(f"/v1/wallets/{wallet}/summary", service=True)).json()
    assert body["moments"] == 3 and body["usd_value"] == "20099.5"
    by_kind = {k["kind"]: (k["count"], k["usd_value"]) for k in body["by_kind"]}
    assert by_kind == {"S2E": (2, "99.5"), "RUG": (1, "20000"), "BHD": (0, "0"), "BAD_ROUTE": (0, "0"), "IDLE_YIELD": (0, "0")}
    assert body["worst_moment"]["kind"] == "RUG" and body["worst_moment"]["severity"] == "0.95"
    assert body["oof_score"] == expected_score((0.5, 99), (0.25, 0.5), (0.95, 20000))
    assert 0 < body["oof_score"] < 100


async def test_empty_wallets_score_zero(clean: Api) -> None:
    body = (await clean.get(f"/v1/wallets/{new_wallet()}/summary", service=True)).json()
    assert body["moments"] == 0 and body["oof_score"] == 0 and body["worst_moment"] is None


async def test_the_second_call_is_served_from_the_cache(clean: Api) -> None:
    wallet = new_wallet()
    await clean.add_moments(make_moment(wallet, T0))
    computes = clean.deps.cache.stats[("compute", "run")]
    first = (await clean.get(f"/v1/wallets/{wallet}/summary", service=True)).json()
    await clean.add_moments(make_moment(wallet, T0 + 5))  # within the TTL the summary does not move
    second = (await clean.get(f"/v1/wallets/{wallet}/summary", service=True)).json()
    assert first == second and second["moments"] == 1
    assert clean.deps.cache.stats[("compute", "run")] == computes + 1
    clean.deps.cache.clear_local()  # another replica: served by Redis, still not recomputed
    third = (await clean.get(f"/v1/wallets/{wallet}/summary", service=True)).json()
    assert third == first and clean.deps.cache.stats[("compute", "run")] == computes + 1
    metrics = (await clean.get("/metrics", service=True)).text
    assert 'oof_cache_events_total{layer="local",outcome="hit"' in metrics
    assert 'oof_cache_events_total{layer="redis",outcome="hit"' in metrics


async def test_users_may_summarize_only_linked_wallets(clean: Api) -> None:
    mine, theirs = new_wallet(), new_wallet()
    await clean.link("carol", mine)
    assert (await clean.get(f"/v1/wallets/{mine}/summary", user="carol")).status_code == 200
    assert (await clean.get(f"/v1/wallets/{theirs}/summary", user="carol")).status_code == 403


async def test_wallets_must_be_base58_addresses(api: Api) -> None:
    response = await api.get("/v1/wallets/not-a-wallet/summary", service=True)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "path.wallet", "message": "is not a base58 Solana address"}]


async def test_a_stampede_on_one_summary_computes_it_once(clean: Api) -> None:
    wallet = new_wallet()
    await clean.add_moments(make_moment(wallet, T0))
    computes = clean.deps.cache.stats[("compute", "run")]
    responses = await asyncio.gather(*(clean.get(f"/v1/wallets/{wallet}/summary", service=True) for _ in range(50)))
    assert {r.status_code for r in responses} == {200}
    assert clean.deps.cache.stats[("compute", "run")] == computes + 1

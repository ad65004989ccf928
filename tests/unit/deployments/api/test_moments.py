"""GET /v1/moments and /v1/moments/{id}: filters, keyset pagination, cursor integrity, visibility."""

from __future__ import annotations

import asyncio
import base64

import orjson

from core.models import MomentKind
from tests.unit.deployments.api.conftest import Api, make_moment, new_wallet

T0 = 1_750_000_000


async def test_filters_by_wallet_kind_time_and_severity(clean: Api) -> None:
    wallet, other = new_wallet(), new_wallet()
    await clean.add_moments(
        make_moment(wallet, T0, kind=MomentKind.S2E, severity="0.2"),
        make_moment(wallet, T0 + 10, kind=MomentKind.RUG, severity="0.9"),
        make_moment(wallet, T0 + 20, kind=MomentKind.BHD, severity="0.6"),
        make_moment(other, T0 + 30, kind=MomentKind.RUG, severity="0.9"),
    )
    everything = (await clean.get("/v1/moments", service=True)).json()
    assert [m["detected_at"] for m in everything["items"]] == [T0 + 30, T0 + 20, T0 + 10, T0]
    assert everything["next_cursor"] is None
    first = everything["items"][0]
    assert first["severity"] == "0.9" and first["usd_value"] == "100" and first["explain"] == {"p_exit": "1.5"}

    async def ids(**params: object) -> list[int]:
        response = await clean.get("/v1/moments", service=True, params=params)
        assert response.status_code == 200, response.text
        return [m["detected_at"] for m in response.json()["items"]]

    assert await ids(wallet=wallet) == [T0 + 20, T0 + 10, T0]
    assert await ids(wallet=wallet, kinds="rug,BHD") == [T0 + 20, T0 + 10]
    assert await ids(kinds=["RUG", "S2E"]) == [T0 + 30, T0 + 10, T0]
    assert await ids(since=T0 + 10, until="2025-06-15T15:07:00Z") == [T0 + 10]  # until (T0 + 20) is exclusive
    assert await ids(min_severity="0.6") == [T0 + 30, T0 + 20, T0 + 10]
    assert await ids(since="2025-06-15T15:06:40", limit=1) == [T0 + 30]  # no offset: UTC


async def test_cursor_pages_are_stable_under_concurrent_inserts(clean: Api) -> None:
    wallet = new_wallet()
    originals = [make_moment(wallet, T0 + i // 2) for i in range(30)]  # pairs share detected_at: ties broken by id
    await clean.add_moments(*originals)
    inserting = True

    async def keep_inserting() -> None:
        step = 0
        while inserting:  # newer moments, and moments tied with ones already seen
            await clean.add_moments(make_moment(wallet, T0 + 100 + step), make_moment(wallet, T0 + 14))
            step += 1
            await asyncio.sleep(0)

    writer = asyncio.create_task(keep_inserting())
    seen: list[str] = []
    cursor = None
    try:
        for _ in range(20):
            params = {"wallet": wallet, "limit": 7} | ({"cursor": cursor} if cursor else {})
            page = (await clean.get("/v1/moments", service=True, params=params)).json()
            seen.extend(m["id"] for m in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        inserting = False
        await writer
    assert len(seen) == len(set(seen)), "a moment appeared on two pages"
    assert {m.id for m in originals} <= set(seen), "a moment that existed all along was skipped"


async def test_tampered_or_foreign_cursors_are_422(clean: Api) -> None:
    wallet = new_wallet()
    await clean.add_moments(*(make_moment(wallet, T0 + i) for i in range(3)))
    cursor = (await clean.get("/v1/moments", service=True, params={"limit": 1})).json()["next_cursor"]
    detected_at, moment_id, tag = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    forged = base64.urlsafe_b64encode(orjson.dumps([detected_at + 1, moment_id, tag])).decode().rstrip("=")
    for bad, params in (
        (forged, {}),
        ("not-base64!!", {}),
        (base64.urlsafe_b64encode(b'{"a": 1}').decode(), {}),
        (cursor, {"kinds": "RUG"}),  # a cursor of another listing
    ):
        response = await clean.get("/v1/moments", service=True, params={"limit": 1, "cursor": bad, **params})
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["query.cursor"]
    ok = await clean.get("/v1/moments", service=True, params={"limit": 1, "cursor": cursor})
    assert ok.status_code == 200 and ok.json()["items"][0]["detected_at"] == T0 + 1


async def test_users_see_only_their_linked_wallets(clean: Api) -> None:
    mine, also_mine, theirs = new_wallet(), new_wallet(), new_wallet()
    await clean.link("alice", mine, also_mine)
    await clean.link("bob", theirs)
    await clean.add_moments(make_moment(mine, T0), make_moment(also_mine, T0 + 1), make_moment(theirs, T0 + 2))
    listing = (await clean.get("/v1/moments", user="alice")).json()
    assert {m["wallet"] for m in listing["items"]} == {mine, also_mine}
    one = await clean.get("/v1/moments", user="alice", params={"wallet": mine})
    assert [m["wallet"] for m in one.json()["items"]] == [mine]
    assert (await clean.get("/v1/moments", user="alice", params={"wallet": theirs})).status_code == 403
    assert (await clean.get("/v1/moments", user="nobody")).json() == {"items": [], "next_cursor": None}
    theirs_id = next(m["id"] for m in (await clean.get("/v1/moments", user="bob")).json()["items"])
    assert (await clean.get(f"/v1/moments/{theirs_id}", user="alice")).status_code == 404  # not even its existence
    assert (await clean.get(f"/v1/moments/{theirs_id}", user="bob")).json()["wallet"] == theirs
    assert (await clean.get(f"/v1/moments/{theirs_id}", service=True)).status_code == 200


async def test_v2_adds_aggregations_by_kind_and_bucket(clean: Api) -> None:
    wallet = new_wallet()
    day = 86_400
    await clean.add_moments(
        make_moment(wallet, 20_000 * day + 10, kind=MomentKind.RUG, usd="10", severity="0.9"),
        make_moment(wallet, 20_000 * day + 3_700, kind=MomentKind.RUG, usd="5.5", severity="0.3"),
        make_moment(wallet, 20_001 * day, kind=MomentKind.S2E, usd="1"),
    )
    body = (await clean.get("/v2/moments", service=True, params={"wallet": wallet, "limit": 1})).json()
    assert len(body["items"]) == 1 and body["next_cursor"]
    aggregations = body["aggregations"]
    assert aggregations["total"] == 3 and aggregations["usd_value"] == "16.5"
    assert {k["kind"]: (k["count"], k["usd_value"], k["max_severity"]) for k in aggregations["by_kind"]} == {
        "RUG": (2, "15.5", "0.9"), "S2E": (1, "1", "0.5"),
    }
    assert [(b["bucket_start"], b["kind"], b["count"]) for b in aggregations["by_bucket"]] == [
        (20_001 * day, "S2E", 1), (20_000 * day, "RUG", 2),
    ]
    hourly = (await clean.get("/v2/moments", service=True, params={"wallet": wallet, "bucket": "hour"})).json()
    assert len(hourly["aggregations"]["by_bucket"]) == 3
    assert (await clean.get("/v2/moments", service=True, params={"bucket": "week"})).status_code == 422
    assert (await clean.get("/v2/moments", user="stranger")).json()["aggregations"]["total"] == 0

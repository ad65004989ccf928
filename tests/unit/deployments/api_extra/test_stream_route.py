"""`GET /v1/stream/moments` over a real socket (uvicorn): live events, resume, heartbeats, scope, cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from solders.keypair import Keypair

from streams.storage import insert_wallet_link
from tests.unit.deployments.api_extra.conftest import MomentFactory, Served


class EventReader:
    """Splits an SSE body into events (dicts of field -> value; comments under `:`)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_text()
        self._buffer = ""

    async def next(self, timeout: float = 5.0) -> dict[str, str]:
        async with asyncio.timeout(timeout):
            while "\n\n" not in self._buffer:
                self._buffer += await anext(self._chunks)
        block, self._buffer = self._buffer.split("\n\n", 1)
        event: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
        return event

    async def moments(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next `count` moment events (heartbeats skipped) as {seq, moment}."""
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while len(found) < count:
                event = await self.next(timeout)
                if event.get("event") == "moment":
                    found.append({"seq": int(event["id"]), "moment": orjson.loads(event["data"])})
        return found


@asynccontextmanager
async def stream(served: Served, *, user: str | None = None, service: bool = False,
                 params: dict[str, Any] | None = None, last_event_id: int | None = None) -> AsyncIterator[EventReader]:
    url = str(httpx.URL("/v1/stream/moments", params=params))
    headers = served.api.user(user) if user else served.api.service("GET", url) if service else {}
    if last_event_id is not None:
        headers["last-event-id"] = str(last_event_id)
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        async with client.stream("GET", url, headers=headers) as response:
            reader = EventReader(response)
            if response.status_code == 200:
                assert (await reader.next())["retry"]  # subscribed: from here on nothing is missed
            yield reader


async def linked(served: Served, user: str) -> str:
    wallet = str(Keypair().pubkey())
    async with served.api.deps.pool.acquire() as conn:
        await insert_wallet_link(conn, user, wallet)
    return wallet


async def test_a_moment_saved_after_connecting_arrives(served: Served, make_moment: MomentFactory) -> None:
    mine, theirs = await linked(served, "alice"), await linked(served, "bob")
    async with stream(served, user="alice") as events:
        assert events.response.headers["content-type"].startswith("text/event-stream")
        assert events.response.headers["cache-control"] == "no-cache"
        assert events.response.headers["x-accel-buffering"] == "no"
        await served.api.add_moments(make_moment(theirs))
        moment = make_moment(mine)
        await served.api.add_moments(moment)

        (got,) = await events.moments(1)

    assert got["moment"]["id"] == moment.id and got["moment"]["wallet"] == mine
    assert got["moment"]["usd_value"] == "123.45"  # the wire format of moment_to_dict


async def test_resume_with_last_event_id_gets_exactly_what_was_missed(
    served: Served, make_moment: MomentFactory
) -> None:
    wallet = await linked(served, "alice")
    async with stream(served, user="alice") as events:
        await served.api.add_moments(make_moment(wallet))
        (seen,) = await events.moments(1)
    missed = [make_moment(wallet) for _ in range(3)]
    for m in missed:  # while disconnected
        await served.api.add_moments(m)

    async with stream(served, user="alice", last_event_id=seen["seq"]) as events:
        caught_up = await events.moments(3)
        live = make_moment(wallet)
        await served.api.add_moments(live)
        (after,) = await events.moments(1)
        quiet = await events.next()

    assert [e["moment"]["id"] for e in caught_up] == [m.id for m in missed]
    assert [e["seq"] for e in caught_up] == sorted(e["seq"] for e in caught_up)
    assert after["moment"]["id"] == live.id
    assert quiet == {"": "ping"}  # nothing repeated: only a heartbeat follows


async def test_heartbeats_keep_an_idle_stream_alive(served: Served) -> None:
    async with stream(served, service=True) as events:
        beats = [await events.next(timeout=2) for _ in range(2)]

    assert beats == [{"": "ping"}, {"": "ping"}]


async def test_services_may_filter_by_wallet(served: Served, make_moment: MomentFactory) -> None:
    wanted, other = str(Keypair().pubkey()), str(Keypair().pubkey())
    async with stream(served, service=True, params={"wallet": wanted}) as events:
        await served.api.add_moments(make_moment(other))
        await served.api.add_moments(make_moment(wanted))
        (got,) = await events.moments(1)

    assert got["moment"]["wallet"] == wanted


async def test_refusals_are_problems_before_the_stream_starts(served: Served) -> None:
    theirs = await linked(served, "bob")
    async with stream(served) as anonymous:
        assert anonymous.response.status_code == 401
    async with stream(served, user="alice", params={"wallet": theirs}) as foreign:
        assert foreign.response.status_code == 403
        assert foreign.response.headers["content-type"] == "application/problem+json"
    async with stream(served, user="alice", last_event_id=None, params={"wallet": "nope"}) as invalid:
        assert invalid.response.status_code == 422


async def test_a_bad_last_event_id_is_a_422(served: Served) -> None:
    response = await served.api.get("/v1/stream/moments", user="alice", headers={"last-event-id": "abc"})

    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "header.last-event-id"


async def test_a_client_leaving_releases_its_subscription_and_tasks(served: Served) -> None:
    async with stream(served, user="alice") as events:  # starts the broadcaster if need be
        await events.next(timeout=2)
    await asyncio.sleep(0.2)
    baseline = set(asyncio.all_tasks())

    async with stream(served, user="alice") as events:
        await events.next(timeout=2)
        broadcaster = served.broadcaster
        assert broadcaster is not None and broadcaster.subscriber_count == 1
    async with asyncio.timeout(5):
        while broadcaster.subscriber_count or set(asyncio.all_tasks()) - baseline:
            await asyncio.sleep(0.02)

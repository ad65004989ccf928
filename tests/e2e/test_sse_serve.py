"""The moment stream through the real Ray Serve HTTP port: live delivery and Last-Event-ID resume.

The wallet is linked the way a client would do it (nonce, ed25519 signature, link), and
moments are written straight to PostgreSQL, as the pipeline's sink does: the NOTIFY trigger
is what wakes the replica's broadcaster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson
from solders.keypair import Keypair

from core.models import Moment, MomentKind, MomentStatus, moment_id
from streams.storage import upsert_moments
from tests.e2e.conftest import ApiServer, unique_user


def make_moment(wallet: str, sig: str) -> Moment:
    return Moment(
        id=moment_id(MomentKind.S2E, wallet, wallet, sig), kind=MomentKind.S2E, wallet=wallet, mint=wallet,
        severity=Decimal("0.4"), pct=Decimal("0.8"), usd_value=Decimal("99.5"), window_start=1_750_000_000,
        window_end=1_750_604_800, sig_ref=sig, slot_ref=1, status=MomentStatus.OPEN,
        detected_at=1_750_000_100, updated_at=1_750_000_100,
    )


async def save(dsn: str, *moments: Moment) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for moment in moments:  # one statement each: one change, one seq, one event
            await upsert_moments(conn, [moment])
    finally:
        await conn.close()


@asynccontextmanager
async def moment_stream(
    server: ApiServer, user: str, last_event_id: int | None = None
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """Yields an iterator of moment events ({seq, moment}); heartbeats are skipped."""
    headers = server.user_headers(user)
    if last_event_id is not None:
        headers["last-event-id"] = str(last_event_id)
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=20) as client:
        async with client.stream("GET", "/v1/stream/moments", headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()

            async def events() -> AsyncIterator[dict[str, Any]]:
                fields: dict[str, str] = {}
                async for line in lines:
                    if line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                        continue
                    if fields.get("event") == "moment":
                        yield {"seq": int(fields["id"]), "moment": orjson.loads(fields["data"])}
                    fields = {}

            stream = events()
            # The first block is `retry:`; reading it proves the replica has subscribed.
            assert (await anext(lines)).startswith("retry: ")
            yield stream


async def next_moments(stream: AsyncIterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(15):
        return [await anext(stream) for _ in range(count)]


async def link_wallet(server: ApiServer, user: str) -> str:
    key = Keypair()
    wallet = str(key.pubkey())
    headers = server.user_headers(user)
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=10) as client:
        grant = await client.post("/v1/wallets/link/nonce", json={"wallet": wallet}, headers=headers)
        assert grant.status_code == 200, grant.text
        signature = str(key.sign_message(grant.json()["message"].encode()))
        body = {"wallet": wallet, "nonce": grant.json()["nonce"], "signature": signature}
        linked = await client.post("/v1/wallets/link", json=body, headers=headers)
        assert linked.status_code == 201, linked.text
    return wallet


async def test_stream_delivers_live_moments_and_resumes_after_a_disconnect(api_server: ApiServer) -> None:
    user = unique_user("e2e-sse")
    wallet = await link_wallet(api_server, user)
    first = make_moment(wallet, "first")

    async with moment_stream(api_server, user) as stream:
        await save(api_server.dsn, first)
        (live,) = await next_moments(stream, 1)
    missed = [make_moment(wallet, f"missed-{i}") for i in range(2)]
    await save(api_server.dsn, *missed)  # while nobody is connected

    async with moment_stream(api_server, user, last_event_id=live["seq"]) as stream:
        caught_up = await next_moments(stream, 2)
        latest = make_moment(wallet, "latest")
        await save(api_server.dsn, latest)
        (after,) = await next_moments(stream, 1)

    assert live["moment"]["id"] == first.id and live["moment"]["usd_value"] == "99.5"
    assert [e["moment"]["id"] for e in caught_up] == [m.id for m in missed]
    assert live["seq"] < caught_up[0]["seq"] < caught_up[1]["seq"] < after["seq"]
    assert after["moment"]["id"] == latest.id  # straight after the catch-up: nothing repeated

"""Moment cards: a valid 1200×630 PNG, cached by moment version, re-rendered when the moment changes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image
from solders.keypair import Keypair

from core.models import Moment, MomentStatus
from deployments.cards import CardService, LocalFileStore, render_card
from deployments.linking import NamedConnections
from streams.storage import Candle, insert_wallet_link, upsert_candles
from tests.unit.deployments.api_extra.conftest import MomentFactory, Served

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class CountingRenderer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, moment: Moment, candles: Sequence[Candle]) -> bytes:
        self.calls.append((moment.id, len(candles)))
        return render_card(moment, candles)


def image(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    picture = Image.open(io.BytesIO(png))
    picture.load()
    return picture


def candles(mint: str, start: int, count: int) -> list[Candle]:
    return [
        Candle(mint, start + 60 * i, Decimal(1), Decimal(2), Decimal("0.5"), Decimal(1) + Decimal(i) / 10,
               Decimal(10), 3, 100 + i, 100 + i)
        for i in range(count)
    ]


@pytest.mark.parametrize("status", [MomentStatus.OPEN, MomentStatus.FINAL])
def test_render_makes_a_card_sized_png_with_or_without_prices(make_moment: MomentFactory, status: MomentStatus) -> None:
    moment = make_moment(status=status)

    with_chart = image(render_card(moment, candles(moment.mint, moment.window_start, 90)))
    without = image(render_card(moment, []))

    assert with_chart.size == without.size == (1200, 630)
    assert with_chart.format == "PNG"
    assert render_card(moment, []) == render_card(moment, [])  # deterministic: ETags may name it


async def setup_card_api(served: Served, tmp_path: Path) -> tuple[CountingRenderer, str]:
    renders = CountingRenderer()
    store = LocalFileStore(tmp_path / "cards")
    served.api.app.state.card_service = CardService(NamedConnections(served.api.deps, "t"), store, render=renders)
    key = Keypair()
    async with served.api.deps.pool.acquire() as conn:
        await insert_wallet_link(conn, "alice", str(key.pubkey()))
    return renders, str(key.pubkey())


async def test_cards_are_cached_until_the_moment_changes(
    served: Served, make_moment: MomentFactory, tmp_path: Path
) -> None:
    renders, wallet = await setup_card_api(served, tmp_path)
    moment = make_moment(wallet, sig_ref="card")
    await served.api.add_moments(moment)
    async with served.api.deps.pool.acquire() as conn:
        await upsert_candles(conn, candles(moment.mint, moment.window_start - 600, 30))
    url = f"/v1/cards/moment/{moment.id}.png"

    first = await served.api.get(url, user="alice")
    second = await served.api.get(url, user="alice")
    revalidated = await served.api.get(url, user="alice", headers={"if-none-match": first.headers["etag"]})
    final = make_moment(wallet, sig_ref="card", status=MomentStatus.FINAL, updated_at=moment.updated_at + 60)
    await served.api.add_moments(final)
    changed = await served.api.get(url, user="alice", headers={"if-none-match": first.headers["etag"]})

    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert image(first.content).size == (1200, 630)
    assert first.headers["cache-control"] == "private, max-age=60"  # open
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]
    assert changed.headers["cache-control"] == "private, max-age=86400"  # final
    assert renders.calls == [(moment.id, 30), (moment.id, 30)]  # once per version
    assert len(list((tmp_path / "cards").rglob("*.png"))) == 2


async def test_who_may_see_a_card(served: Served, make_moment: MomentFactory, tmp_path: Path) -> None:
    renders, wallet = await setup_card_api(served, tmp_path)
    moment = make_moment(wallet)
    await served.api.add_moments(moment)
    url = f"/v1/cards/moment/{moment.id}.png"

    stranger = await served.api.get(url, user="bob")
    missing = await served.api.get("/v1/cards/moment/s2e_0000.png", user="alice")
    service = await served.api.get(url, service=True)
    anonymous = await served.api.get(url)
    malformed = await served.api.get("/v1/cards/moment/NOT-AN-ID.png", user="alice")

    assert stranger.status_code == missing.status_code == 404
    assert stranger.json()["type"] == missing.json()["type"] == "https://oof.dev/problems/not-found"
    assert service.status_code == 200 and image(service.content).size == (1200, 630)
    assert anonymous.status_code == 401 and malformed.status_code == 422
    assert len(renders.calls) == 1

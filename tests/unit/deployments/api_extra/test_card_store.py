"""Object stores for cards: the local directory and S3 (against moto's S3 server over real HTTP)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
import pytest_asyncio
from moto.server import ThreadedMotoServer

from core.models import Moment
from deployments.cards import CardService, LocalFileStore, ObjectStore, S3Store, render_card
from streams.storage import Candle
from tests.unit.deployments.api_extra.conftest import MomentFactory


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_store(endpoint: str, prefix: str = "") -> S3Store:
    store = S3Store.connect(
        f"cards-{secrets.token_hex(4)}", prefix=prefix, endpoint_url=endpoint, region="us-east-1",
        access_key_id="test", secret_access_key="test",
    )
    store._client.create_bucket(Bucket=store.bucket)  # noqa: SLF001 - test setup
    return store


@pytest_asyncio.fixture(params=["local", "s3"], loop_scope="session")
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "local":
        yield LocalFileStore(tmp_path / "cards")
    else:
        yield s3_store(request.getfixturevalue("s3_endpoint"), prefix="oof/")


async def test_put_get_exists(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    assert await store.get("cards/moment/a/1.png") is None
    assert not await store.exists("cards/moment/a/1.png")

    await store.put("cards/moment/a/1.png", b"\x89PNG first", "image/png")
    await store.put("cards/moment/a/1.png", b"\x89PNG second", "image/png")

    assert await store.exists("cards/moment/a/1.png")
    assert await store.get("cards/moment/a/1.png") == b"\x89PNG second"
    assert not await store.exists("cards/moment/a")  # a prefix is not an object


@pytest.mark.parametrize("key", ["../escape.png", "/abs.png", "a//b.png", "a/./b.png", "a b.png", ""])
async def test_keys_cannot_escape_the_store(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        await LocalFileStore(tmp_path).put(key, b"x")


async def test_s3_objects_carry_their_content_type_and_prefix(s3_endpoint: str) -> None:
    store = s3_store(s3_endpoint, prefix="/oof/")
    await store.put("cards/x.png", b"png", "image/png")

    head = store._client.head_object(Bucket=store.bucket, Key="oof/cards/x.png")  # noqa: SLF001

    assert head["ContentType"] == "image/png"


async def test_concurrent_requests_for_one_card_render_once(
    s3_endpoint: str, make_moment: MomentFactory, db: object
) -> None:
    calls: list[str] = []

    def slow_render(moment: Moment, candles: Sequence[Candle]) -> bytes:
        calls.append(moment.id)
        return render_card(moment, candles)

    cards = CardService(db, s3_store(s3_endpoint), render=slow_render)  # type: ignore[arg-type]
    moment = make_moment()

    results = await asyncio.gather(*(cards.card(moment) for _ in range(5)))

    assert calls == [moment.id]
    assert len({r.png for r in results}) == 1 and len({r.etag for r in results}) == 1
    assert (await cards.card(moment)).key == results[0].key and calls == [moment.id]

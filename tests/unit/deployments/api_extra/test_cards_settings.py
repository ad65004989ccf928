"""The `cards` settings choose the object store of rendered cards (local or S3), and the storage
health check probes whichever was chosen, over moto's S3 server on a real socket."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.settings import CardsSettings, load_settings
from deployments.auth.testing import JwksServer, RsaTestKey
from deployments.cards import LocalFileStore, S3Store
from deployments.cards.store import store_from_settings
from deployments.health import HealthChecker, storage_check
from tests.unit.deployments.api.conftest import api_settings, running_api
from tests.unit.deployments.api_extra.conftest import MomentFactory
from tests.unit.deployments.api_extra.test_card_store import s3_endpoint  # noqa: F401 - fixture

KEYS = {"s3_access_key_id": "test", "s3_secret_access_key": "s3-secret-never-shown"}


def s3_settings(endpoint: str, bucket: str, **extra: Any) -> CardsSettings:
    return CardsSettings(store="s3", s3_bucket=bucket, s3_endpoint_url=endpoint, s3_region="us-east-1",
                         s3_prefix="oof", **KEYS, **extra)  # type: ignore[arg-type]


def test_local_is_the_default_under_the_project_root(tmp_path: Path) -> None:
    store = store_from_settings(CardsSettings(), tmp_path)
    assert isinstance(store, LocalFileStore) and store.root == tmp_path / "var" / "cards"
    absolute = store_from_settings(CardsSettings(local_dir=tmp_path / "elsewhere"), Path("/nowhere"))
    assert absolute.describe() == {"store": "local", "path": str(tmp_path / "elsewhere")}


def test_bad_cards_settings_are_reported_with_the_rest() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"OOF_CARDS__STORE": "s3", "OOF_CARDS__S3_ENDPOINT_URL": "ftp://x",
                       "OOF_CARDS__S3_ACCESS_KEY_ID": "only-one-half", "OOF_DATABASE__POOL_MIN": "-1"})
    text = str(caught.value)
    assert "cards.s3_endpoint_url" in text and "database.pool_min" in text
    with pytest.raises(ConfigError, match="s3_bucket is not set"):
        load_settings({"OOF_CARDS__STORE": "s3"})
    with pytest.raises(ConfigError, match="or neither"):
        load_settings({"OOF_CARDS__S3_BUCKET": "bucket", "OOF_CARDS__S3_ACCESS_KEY_ID": "k"})
    assert "only-one-half" not in text


async def test_the_storage_check_probes_s3_and_reports_a_missing_bucket_as_down(s3_endpoint: str) -> None:  # noqa: F811
    store = store_from_settings(s3_settings(s3_endpoint, f"cards-{secrets.token_hex(4)}"), Path("/unused"))
    assert isinstance(store, S3Store)
    checker = HealthChecker([storage_check(store)])
    down = (await checker.run())["checks"]["storage"]  # the bucket does not exist yet
    assert down["status"] == "down" and "s3-secret-never-shown" not in str(down)
    store._client.create_bucket(Bucket=store.bucket)  # noqa: SLF001 - test setup
    ok = (await checker.run())["checks"]["storage"]
    assert ok["status"] == "ok" and ok["detail"]["store"] == "s3" and ok["detail"]["bucket"] == store.bucket
    assert store._client.list_objects_v2(Bucket=store.bucket).get("KeyCount") == 0  # noqa: SLF001 - probe cleaned up


async def test_cards_rendered_by_the_api_land_in_the_configured_bucket(
    s3_endpoint: str, api_dsn: str, signing_key: RsaTestKey, jwks_server: JwksServer,  # noqa: F811
    make_moment: MomentFactory,
) -> None:
    bucket = f"cards-{secrets.token_hex(4)}"
    cards = s3_settings(s3_endpoint, bucket).model_dump(mode="json")
    cards.update(KEYS)
    settings = api_settings(api_dsn, cards=cards)
    async with running_api(settings, signing_key, jwks_server.url) as api:
        store = api.deps.cards_store
        assert isinstance(store, S3Store)
        store._client.create_bucket(Bucket=bucket)  # noqa: SLF001 - test setup
        moment = make_moment()
        await api.add_moments(moment)
        response = await api.get(f"/v1/cards/moment/{moment.id}.png", service=True)
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
        keys = [o["Key"] for o in store._client.list_objects_v2(Bucket=bucket)["Contents"]]  # noqa: SLF001
        assert len(keys) == 1 and keys[0].startswith(f"oof/cards/moment/{moment.id}/")
        health = (await api.get("/health/detailed", service=True)).json()
        assert health["checks"]["storage"]["status"] == "ok" and health["checks"]["storage"]["detail"]["store"] == "s3"

"""core.settings and secrets: `masked()` hides every one, and no error message ever echoes one."""

from __future__ import annotations

import json
from pathlib import Path

from core.settings import load_settings
from tests.unit.core.test_settings import ENV_ID, load_error, write


SECRET_ENV = {
    "DATABASE_URL": "postgresql://oof:db-hunter2@db.internal:5432/oof",
    "REDIS_URL": "rediss://:redis-hunter2@cache:6380/0",
    "OOF_JUPITER__API_KEY": "jup-hunter2",
    "OOF_AUTH__SERVICE_SECRETS__INGEST": "svc-hunter2-new,svc-hunter2-old",
    "OOF_SOLANA__RPC_HTTP_URL": "https://mainnet.helius-rpc.com/?api-key=helius-hunter2",
    "OOF_CARDS__S3_ACCESS_KEY_ID": "s3-id-hunter2",
    "OOF_CARDS__S3_SECRET_ACCESS_KEY": "s3-hunter2",
}


def test_masked_hides_every_secret() -> None:
    masked = load_settings(SECRET_ENV).masked()

    text = json.dumps(masked)  # also proves it is JSON-able
    assert "hunter2" not in text
    assert masked["database"]["url"] == "postgresql://oof:****@db.internal:5432/oof"
    assert masked["redis"]["url"] == "rediss://:****@cache:6380/0"
    assert masked["jupiter"]["api_key"] == "**********"
    assert masked["cards"]["s3_secret_access_key"] == masked["cards"]["s3_access_key_id"] == "**********"
    assert masked["auth"]["service_secrets"] == {"ingest": ["**********", "**********"]}
    assert masked["solana"]["rpc_http_url"] == "https://mainnet.helius-rpc.com/?api-key=****"
    assert masked["thresholds"]["s2e_min_pct"] == "0.25"  # decimals stay exact
    assert masked["log"]["json"] is True


def test_secrets_never_appear_in_error_messages(tmp_path: Path) -> None:
    typo = write(tmp_path, "typo.yaml", "database:\n  ulr: postgresql://u:yaml-hunter2@h/db\n")
    bad_yaml = write(tmp_path, "bad.yaml", "jupiter:\n  api_key: [yaml-hunter2\n")
    environ = {
        "DATABASE_URL": "postgresql://u:env-hunter2@h/db",
        "OOF_DATABASE__POOL_MIN": "99",  # a section-level error whose input holds the database URL
        "REDIS_URL": "http://:env-hunter2@h",  # wrong scheme, password inside
        "OOF_AUTH__SERVICE_SECRETS": '{"a": ["env-hunter2-1", "env-hunter2-2", "env-hunter2-3"]}',
        "OOF_JUPITER__API_KEY": "",  # empty means unset, not an empty secret
        "OOF_JUPITER": '{"api_key": "env-hunter2"',  # truncated JSON holding a secret
    }

    error = load_error(environ, [typo, bad_yaml])

    assert {problem.location for problem in error.problems} == {
        "database.ulr",
        str(bad_yaml),
        "database",
        "redis.url",
        "auth.service_secrets",
        "jupiter",
    }
    assert "hunter2" not in str(error)
    assert "hunter2" not in repr(error.problems)
    assert "hunter2" not in repr(error.to_problem())


def test_non_secret_bad_values_are_echoed_with_url_credentials_masked() -> None:
    error = load_error({"OOF_SOLANA__RPC_WS_URL": "https://rpc.example/?api-key=hunter2"})

    (problem,) = error.problems
    assert "got 'https://rpc.example/?api-key=****'" in problem.message
    assert "hunter2" not in str(error)

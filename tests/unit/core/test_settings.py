"""core.settings: sources and their priority, validation, one ConfigError for every problem, masking.

The environment is always a dict passed in; nothing here touches os.environ.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pydantic
import pytest

from core.errors import ConfigError
from core.paths import project_root
from core.settings import (
    DEFAULT_REPLAY_FILE,
    LogSettings,
    RateLimitPolicy,
    Settings,
    default_config_files,
    load_settings,
)

SOL = "So11111111111111111111111111111111111111112"
WALLET = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
ENV_ID = "12345678-1234-4234-8234-123456789abc"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(error: ConfigError) -> dict[str, str]:
    return {problem.location: problem.message for problem in error.problems}


def load_error(environ: dict[str, str], files: list[Path] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, files or [])
    return caught.value


# --- defaults ----------------------------------------------------------------------------


def test_defaults_with_empty_environ_and_no_files() -> None:
    settings = load_settings({})

    assert settings == Settings()
    assert settings.database.url is None
    assert (settings.database.pool_min, settings.database.pool_max) == (2, 10)
    assert settings.redis.url is None
    assert settings.solana.source == "replay"
    assert settings.solana.commitment == "confirmed"
    assert settings.solana.wallets == []
    assert settings.solana.max_ws_message_bytes == 16 * 2**20
    assert settings.auth.jwks_url is None and settings.auth.issuer is None
    assert settings.rate_limits.policies["public"] == RateLimitPolicy(limit=60, window_s=60, burst=10, key="ip")
    assert settings.rate_limits.policies["analyze"] == RateLimitPolicy(limit=10, window_s=3600, key="user")
    assert settings.pipeline.shard_count == 4
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8000)
    assert settings.log == LogSettings(level="INFO", json=True)
    assert settings.thresholds.s2e_min_pct == Decimal("0.25")


def test_bundled_defaults_file_matches_code_defaults() -> None:
    # configs/oof.yaml restates the defaults for operators; it must not drift from the code.
    files = default_config_files(project_root(), {})

    assert load_settings({}, files) == Settings()


def test_every_field_has_a_description() -> None:
    def walk(model: type[pydantic.BaseModel]) -> None:
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            if isinstance(info.annotation, type) and issubclass(info.annotation, pydantic.BaseModel):
                walk(info.annotation)

    walk(Settings)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(pydantic.ValidationError):
        settings.database.pool_max = 3  # type: ignore[misc]


def test_relative_paths_resolve_from_project_root(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.solana.replay_path(tmp_path) == tmp_path / DEFAULT_REPLAY_FILE
    assert settings.database.embedded_path(tmp_path) == tmp_path / "var/pg"
    custom = load_settings({"OOF_SOLANA__REPLAY_FILE": "/data/rec.jsonl"})
    assert custom.solana.replay_path(tmp_path) == Path("/data/rec.jsonl")


def test_default_config_files() -> None:
    root = Path("/srv/oof")
    assert default_config_files(root, {}) == [root / "configs/oof.yaml"]
    assert default_config_files(root, {"OOF_CONFIG": "/etc/oof/prod.yaml"}) == [
        root / "configs/oof.yaml",
        Path("/etc/oof/prod.yaml"),
    ]


# --- environment -------------------------------------------------------------------------


def test_env_overrides_nested_fields() -> None:
    settings = load_settings(
        {
            "OOF_DATABASE__POOL_MAX": "20",
            "OOF_SOLANA__SOURCE": "helius",
            "OOF_THRESHOLDS__S2E_MIN_USD": "30.5",
            "OOF_LOG__JSON": "false",
            "OOF_LOG__LEVEL": "debug",
            "oof_api__port": "9000",  # names match case-insensitively
            "UNRELATED": "x",
        }
    )

    assert settings.database.pool_max == 20
    assert settings.solana.source == "helius"
    assert settings.thresholds.s2e_min_usd == Decimal("30.5")
    assert settings.log.json_logs is False
    assert settings.log.level == "DEBUG"
    assert settings.api.port == 9000


def test_unprefixed_aliases() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://oof:pw@db:5432/oof",
            "REDIS_URL": "redis://cache:6379/0",
            "DYNAMIC_ENVIRONMENT_ID": ENV_ID,
        }
    )

    assert settings.database.url is not None
    assert settings.database.url.get_secret_value() == "postgresql://oof:pw@db:5432/oof"
    assert settings.redis.url is not None
    assert settings.redis.url.get_secret_value() == "redis://cache:6379/0"
    assert settings.auth.dynamic_environment_id == ENV_ID
    assert settings.auth.jwks_url == f"https://app.dynamic.xyz/api/v0/sdk/{ENV_ID}/.well-known/jwks"
    assert settings.auth.issuer == f"app.dynamic.xyz/{ENV_ID}"


def test_prefixed_variable_beats_unprefixed_alias() -> None:
    settings = load_settings({"DATABASE_URL": "postgres://a@h/one", "OOF_DATABASE__URL": "postgres://a@h/two"})

    assert settings.database.url is not None
    assert settings.database.url.get_secret_value() == "postgres://a@h/two"


def test_explicit_jwks_url_and_issuer_are_kept() -> None:
    settings = load_settings(
        {"DYNAMIC_ENVIRONMENT_ID": ENV_ID, "OOF_AUTH__JWKS_URL": "https://keys.example/jwks", "OOF_AUTH__ISSUER": "me"}
    )
    assert (settings.auth.jwks_url, settings.auth.issuer) == ("https://keys.example/jwks", "me")


def test_env_lists_and_mappings() -> None:
    settings = load_settings(
        {
            "OOF_SOLANA__WALLETS": f"{WALLET}, {SOL}",
            "OOF_AUTH__AUDIENCE": '["a", "b"]',
            "OOF_RATE_LIMITS__TRUSTED_PROXIES": "10.0.0.0/8,::1",
            "OOF_RATE_LIMITS__POLICIES__ANALYZE__LIMIT": "20",
            "OOF_AUTH__SERVICE_SECRETS__INGEST": "new-secret,old-secret",
            "OOF_PIPELINE": '{"shard_count": 8}',
            "OOF_PIPELINE__BATCH_SIZE": "64",  # refines the JSON section above
        }
    )

    assert settings.solana.wallets == [WALLET, SOL]
    assert settings.auth.audience == ["a", "b"]
    assert settings.rate_limits.trusted_proxies == ["10.0.0.0/8", "::1/128"]
    assert settings.rate_limits.policies["analyze"] == RateLimitPolicy(limit=20, window_s=3600, key="user")
    assert settings.rate_limits.policies["public"].limit == 60  # untouched defaults stay
    secrets = settings.auth.service_secrets["ingest"]
    assert [secret.get_secret_value() for secret in secrets] == ["new-secret", "old-secret"]
    assert (settings.pipeline.shard_count, settings.pipeline.batch_size) == (8, 64)


def test_empty_values_and_non_setting_variables_are_ignored() -> None:
    settings = load_settings({"DATABASE_URL": "", "OOF_DATABASE__POOL_MAX": "", "OOF_CONFIG": "x.yaml", "OOF_X": "1"})

    assert settings == Settings()


# --- YAML files and precedence -----------------------------------------------------------


def test_yaml_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.yaml",
        f"""
database:
  pool_max: 30
solana:
  wallets: [{WALLET}]
thresholds:
  idle_apr: {{{SOL}: "0.08"}}
rate_limits:
  policies:
    analyze: {{limit: 5}}
    bulk: {{limit: 1, window_s: 1, key: service}}
log:
  json: false
""",
    )

    settings = load_settings({}, [path])

    assert settings.database.pool_max == 30
    assert settings.solana.wallets == [WALLET]
    assert settings.thresholds.idle_apr == {SOL: Decimal("0.08")}
    assert settings.rate_limits.policies["analyze"].limit == 5
    assert settings.rate_limits.policies["analyze"].window_s == 3600
    assert settings.rate_limits.policies["bulk"] == RateLimitPolicy(limit=1, window_s=1, key="service")
    assert settings.log.json_logs is False


def test_precedence_overrides_env_later_yaml_earlier_yaml_defaults(tmp_path: Path) -> None:
    early = write(tmp_path, "early.yaml", "api: {port: 1001, host: 0.0.0.0}\npipeline: {shard_count: 2, batch_size: 7}")
    late = write(tmp_path, "late.yaml", "api: {port: 1002}\npipeline: {shard_count: 3}\n")
    env = {"OOF_API__PORT": "1003"}

    settings = load_settings(env, [early, late])
    overridden = load_settings(env, [early, late], overrides={"api": {"port": 1004}})

    assert settings.api.port == 1003  # env beats every file
    assert settings.pipeline.shard_count == 3  # later file beats earlier
    assert settings.pipeline.batch_size == 7  # earlier file still counts where the later is silent
    assert settings.api.host == "0.0.0.0"  # sections merge key by key
    assert settings.pipeline.queue_max_batches == 8  # default
    assert overridden.api.port == 1004  # explicit overrides beat the environment
    assert overridden.api.host == "0.0.0.0"


def test_empty_or_comment_only_yaml_is_fine(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.yaml", "")
    comments = write(tmp_path, "comments.yaml", "# nothing yet\n")

    assert load_settings({}, [empty, comments]) == Settings()


# --- failures: each reported cleanly, all reported together ------------------------------


@pytest.mark.parametrize(
    ("environ", "yaml_text", "location", "fragment"),
    [
        ({"OOF_DATABASE__POOL_MAX": "abc"}, None, "database.pool_max", "parse string as an integer (got 'abc')"),
        ({"OOF_DATABASE__POOL_MIN": "11"}, None, "database", "pool_min (11) must not exceed pool_max (10)"),
        ({"OOF_DATABASE__POOL_MIN": "0"}, None, "database.pool_min", "greater than or equal to 1"),
        ({"OOF_SOLANA__RPC_WS_URL": "https://x"}, None, "solana.rpc_ws_url", "must be a ws:// or wss:// URL"),
        ({"OOF_SOLANA__RPC_HTTP_URL": "ftp://x"}, None, "solana.rpc_http_url", "http:// or https://"),
        ({"DATABASE_URL": "mysql://h/db"}, None, "database.url", "postgres:// or postgresql://"),
        ({"REDIS_URL": "http://h"}, None, "redis.url", "redis://"),
        ({"OOF_SOLANA__WALLETS": f"{WALLET},notakey"}, None, "solana.wallets[1]", "base58 32-byte public key"),
        ({"OOF_SOLANA__SOURCE": "kafka"}, None, "solana.source", "'replay', 'helius' or 'logs'"),
        ({"OOF_RATE_LIMITS__TRUSTED_PROXIES": "10.0.0.300"}, None, "rate_limits.trusted_proxies[0]", "CIDR"),
        ({"OOF_RATE_LIMITS__TRUSTED_PROXIES": "10.0.0.1/8"}, None, "rate_limits.trusted_proxies[0]", "host bits"),
        ({"OOF_AUTH__SERVICE_SECRETS": '{"a.b": ["s"]}'}, None, "auth.service_secrets", "must not contain '.'"),
        ({"OOF_AUTH__SERVICE_SECRETS": '{"a": ["1", "2", "3"]}'}, None, "auth.service_secrets", "one or two"),
        ({"DYNAMIC_ENVIRONMENT_ID": "not-a-uuid"}, None, "auth.dynamic_environment_id", "UUID"),
        ({"OOF_PIPELINE__SHARD_COUNT": "2000"}, None, "pipeline.shard_count", "less than or equal to 1024"),
        ({"OOF_API__PORT": "0"}, None, "api.port", "greater than or equal to 1"),
        ({"OOF_LOG__LEVEL": "loud"}, None, "log.level", "'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ({"OOF_RATE_LIMITS__POLICIES__API__LIMIT": "5"}, None, "rate_limits.policies.api.window_s", "Field required"),
        ({"OOF_DATABASE__POOL_MAXX": "5"}, None, "OOF_DATABASE__POOL_MAXX", "did you mean 'pool_max'"),
        ({"OOF_DATABSE__URL": "x"}, None, "OOF_DATABSE__URL", "did you mean 'database'"),
        ({"OOF_SOLANA__WALLETS": "[1,"}, None, "solana.wallets", "not valid JSON"),
        ({"OOF_PIPELINE": "[1]"}, None, "pipeline", "expected a JSON object"),
        ({}, "database:\n  pool_maxx: 3\n", "database.pool_maxx", "unknown setting (did you mean 'pool_max'?)"),
        ({}, "databse: {}\n", "databse", "unknown setting (did you mean 'database'?)"),
        ({}, "rate_limits:\n  policies:\n    public: {limt: 1}\n", "rate_limits.policies.public.limt", "unknown"),
        ({}, "- database\n", "cfg.yaml", "must be a mapping of sections"),
        ({}, "just a string\n", "cfg.yaml", "not a str"),
        ({}, "database: [\n", "cfg.yaml", "invalid YAML at line 2"),
        ({}, "api: {port: 1}\napi: {port: 2}\n", "cfg.yaml", "duplicate key 'api'"),
        ({}, "database: 5\n", "database", "valid dictionary"),
    ],
)
def test_each_failure_is_one_clean_problem(
    tmp_path: Path, environ: dict[str, str], yaml_text: str | None, location: str, fragment: str
) -> None:
    files = [write(tmp_path, "cfg.yaml", yaml_text)] if yaml_text is not None else []

    error = load_error(environ, files)

    by_location = {p.location.replace(str(tmp_path) + "/", ""): p.message for p in error.problems}
    assert location in by_location, str(error)
    assert fragment in by_location[location], str(error)
    assert "Traceback" not in str(error)
    assert str(error).startswith(f"configuration has {len(error.problems)} problem(s):")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    directory = tmp_path / "a-directory.yaml"
    directory.mkdir()
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")

    problems = problems_of(load_error({}, [missing, directory, binary]))

    assert problems[str(missing)] == "file not found"
    assert problems[str(directory)].startswith("cannot read file")
    assert problems[str(binary)] == "file is not UTF-8 text"


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    # Arrange: one bad value of every kind, spread over env and several files.
    bad = write(
        tmp_path,
        "bad.yaml",
        """
database: {pool_min: 12, pool_max: 3}
solana:
  rpc_ws_url: https://api.mainnet-beta.solana.com
  wallets: [not-a-pubkey]
rate_limits:
  trusted_proxies: [300.1.1.1/33]
auth:
  service_secrets: {"svc.v2": [abc]}
api: {bogus: 1}
""",
    )
    not_mapping = write(tmp_path, "list.yaml", "[1, 2]\n")
    broken = write(tmp_path, "broken.yaml", "api: {port: 1\n")
    missing = tmp_path / "missing.yaml"
    env = {"OOF_PIPELINE__SHARD_COUNT": "many"}

    # Act
    error = load_error(env, [bad, not_mapping, broken, missing])

    # Assert
    problems = problems_of(error)
    assert set(problems) == {
        "database",
        "solana.rpc_ws_url",
        "solana.wallets[0]",
        "rate_limits.trusted_proxies[0]",
        "auth.service_secrets",
        "api.bogus",
        str(not_mapping),
        str(broken),
        str(missing),
        "pipeline.shard_count",
    }
    text = str(error)
    assert text.splitlines()[0] == "configuration has 10 problem(s):"
    assert len(text.splitlines()) == 11
    for problem in error.problems:
        assert str(problem) in text
    sources = {problem.location: problem.source for problem in error.problems}
    assert sources["pipeline.shard_count"] == "OOF_PIPELINE__SHARD_COUNT"
    assert sources["solana.wallets[0]"] == str(bad)

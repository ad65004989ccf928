"""The one typed settings object, and `load_settings` which layers its sources.

Priority, highest first: explicit overrides, the environment (`OOF_<SECTION>__<FIELD>`, plus
`DATABASE_URL`, `REDIS_URL`, `DYNAMIC_ENVIRONMENT_ID`), YAML files (later beats earlier),
defaults. The environment is always passed in: nothing here reads `os.environ`, and
`Settings()` on its own is just the defaults.

Environment details: names match case-insensitively; an empty value counts as unset; list
fields take JSON or `a,b,c`; sections and mappings take JSON, refined by deeper variables;
an all-caps mapping key is lowercased (`…__POLICIES__ANALYZE__LIMIT`), mixed case is kept
(mint addresses). `OOF_CONFIG` names an extra YAML file and is not itself a setting.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self, cast
from urllib.parse import urlsplit

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from solders.pubkey import Pubkey

from core._config_sources import env_layer, merge_layers, value_layer, yaml_layer
from core._history_prices_settings import HistoryPricesSettings
from core._ratelimit_settings import (
    CALLER_POLICIES,
    DEFAULT_POLICIES,
    DEFAULT_ROUTES,
    KEY_COUNTS,
    RateLimitKey,
    RateLimitPolicy,
    RateLimitSettings,
    RoutePattern,
    parse_route_pattern,
)
from core._settings_schema import validation_problems
from core._redact import jsonable_masked
from core.errors import ConfigError
from core.thresholds import Thresholds

__all__ = [
    "DatabaseSettings", "RedisSettings", "SolanaSettings", "AuthSettings", "RateLimitPolicy", "RateLimitSettings",
    "JupiterSettings", "HistoryPricesSettings", "PipelineSettings", "AnalyzeSettings", "ApiSettings", "CardsSettings",
    "LogSettings", "Settings", "DEFAULT_POLICIES", "DEFAULT_ROUTES", "CALLER_POLICIES", "KEY_COUNTS", "RateLimitKey",
    "RoutePattern", "parse_route_pattern", "ENV_PREFIX", "ENV_NESTED_DELIMITER", "ENV_ALIASES",
    "CONFIG_FILE_VAR", "DEFAULT_CONFIG_FILE", "DEFAULT_REPLAY_FILE", "load_settings", "default_config_files",
]

ENV_PREFIX = "OOF_"
ENV_NESTED_DELIMITER = "__"
# Conventional names that platforms (Heroku, docker-compose, Dynamic's docs) already use.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "DATABASE_URL": ("database", "url"),
    "REDIS_URL": ("redis", "url"),
    "DYNAMIC_ENVIRONMENT_ID": ("auth", "dynamic_environment_id"),
}
CONFIG_FILE_VAR = "OOF_CONFIG"
DEFAULT_CONFIG_FILE = Path("configs/oof.yaml")
DEFAULT_REPLAY_FILE = Path("configs/recordings/demo.jsonl")


def _section(**extra: Any) -> ConfigDict:
    return ConfigDict(extra="forbid", frozen=True, **extra)


def _check_url(url: str, schemes: tuple[str, ...]) -> str:
    """Scheme and host check; the message names the scheme only, never the URL (it may hold a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in schemes:
        expected = " or ".join(f"{scheme}://" for scheme in schemes)
        got = f"not {parts.scheme}://" if parts.scheme else "but it has no scheme"
        raise ValueError(f"must be a {expected} URL, {got}")
    if not parts.hostname and parts.scheme not in ("postgres", "postgresql", "unix"):
        raise ValueError("URL has no host")
    return url


def _pubkey(value: str) -> str:
    try:
        Pubkey.from_string(value)
    except ValueError:
        raise ValueError("is not a base58 32-byte public key") from None
    return value


WalletAddress = Annotated[str, AfterValidator(_pubkey)]


class DatabaseSettings(BaseModel):
    model_config = _section()

    url: SecretStr | None = Field(None, description="postgres:// URL; unset starts an embedded PostgreSQL")
    embedded_dir: Path = Field(Path("var/pg"), description="data directory of the embedded PostgreSQL")
    pool_min: int = Field(2, ge=1, description="connections kept open in the pool")
    pool_max: int = Field(10, ge=1, description="most connections the pool opens")
    acquire_timeout_s: float = Field(5.0, gt=0, description="wait at most this long for a pooled connection")
    idle_timeout_s: float = Field(300.0, gt=0, description="close connections idle this long")
    max_lifetime_s: float = Field(3600.0, gt=0, description="recycle connections older than this")
    health_check_interval_s: float = Field(30.0, gt=0, description="how often the health probe pings the database")
    command_timeout_s: float = Field(30.0, gt=0, description="cancel a statement running longer than this")

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_url(value.get_secret_value(), ("postgres", "postgresql"))
        return value

    @model_validator(mode="after")
    def _pool_bounds(self) -> Self:
        if self.pool_min > self.pool_max:
            raise ValueError(f"pool_min ({self.pool_min}) must not exceed pool_max ({self.pool_max})")
        return self

    def embedded_path(self, root: Path) -> Path:
        """`embedded_dir`, relative paths taken from the project root rather than the cwd."""
        return self.embedded_dir if self.embedded_dir.is_absolute() else root / self.embedded_dir


class RedisSettings(BaseModel):
    model_config = _section()

    url: SecretStr | None = Field(None, description="redis:// or rediss:// URL; unset uses in-process fallbacks")
    socket_timeout_s: float = Field(1.0, gt=0, description="give up on a Redis call after this long")

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_url(value.get_secret_value(), ("redis", "rediss", "unix"))
        return value


class SolanaSettings(BaseModel):
    model_config = _section()

    source: Literal["replay", "helius", "logs"] = Field("replay", description="where transactions come from")
    rpc_http_url: str = Field("https://api.mainnet-beta.solana.com", description="JSON-RPC endpoint (http/https)")
    rpc_ws_url: str = Field("wss://api.mainnet-beta.solana.com", description="websocket endpoint (ws/wss)")
    commitment: Literal["confirmed", "finalized"] = Field("confirmed", description="commitment for ingest")
    replay_file: Path | None = Field(None, description="recorded getTransaction JSONL; unset uses the bundled sample")
    wallets: list[WalletAddress] = Field(default_factory=list, description="wallets to watch (base58 addresses)")
    max_requests_per_10s: int = Field(100, gt=0, description="RPC request budget per 10 s")
    max_ws_message_bytes: int = Field(16 * 2**20, gt=0, description="largest websocket frame accepted")

    @field_validator("rpc_http_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value, ("http", "https"))

    @field_validator("rpc_ws_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        return _check_url(value, ("ws", "wss"))

    def replay_path(self, root: Path) -> Path:
        """The recording to replay, relative paths taken from the project root."""
        path = self.replay_file or DEFAULT_REPLAY_FILE
        return path if path.is_absolute() else root / path


class AuthSettings(BaseModel):
    model_config = _section()

    dynamic_environment_id: str | None = Field(None, description="Dynamic.xyz environment id (UUID)")
    jwks_url: str | None = Field(None, description="JWKS URL; derived from the environment id when unset")
    issuer: str | None = Field(None, description="expected `iss`; derived from the environment id when unset")
    audience: list[str] = Field(default_factory=list, description="accepted `aud` values; empty skips the check")
    jwks_cache_ttl_s: int = Field(300, gt=0, description="how long fetched signing keys stay cached")
    service_secrets: dict[str, list[SecretStr]] = Field(
        default_factory=dict, description="HMAC service id -> its live secrets (two during rotation)"
    )
    hmac_window_s: int = Field(300, gt=0, description="accepted clock skew of service token timestamps")

    @model_validator(mode="before")
    @classmethod
    def _derive_dynamic_urls(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(env := data.get("dynamic_environment_id"), str) and env:
            data = dict(data)
            if data.get("jwks_url") is None:
                data["jwks_url"] = f"https://app.dynamic.xyz/api/v0/sdk/{env}/.well-known/jwks"
            if data.get("issuer") is None:
                data["issuer"] = f"app.dynamic.xyz/{env}"
        return data

    @field_validator("dynamic_environment_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                uuid.UUID(value)
            except ValueError:
                raise ValueError("must be a UUID like 00000000-0000-0000-0000-000000000000") from None
            if len(value) != 36:
                raise ValueError("must be a UUID in its 36-character form")
        return value

    @field_validator("jwks_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, ("https",))

    @field_validator("service_secrets")
    @classmethod
    def _service_ids(cls, value: dict[str, list[SecretStr]]) -> dict[str, list[SecretStr]]:
        for service_id, secrets in value.items():
            # Tokens are `service_id.timestamp.signature`: a dot in the id would be ambiguous.
            if not service_id or "." in service_id:
                raise ValueError(f"service id {service_id!r} must be non-empty and must not contain '.'")
            if not 1 <= len(secrets) <= 2:
                raise ValueError(f"service {service_id!r} needs one or two secrets (two only while rotating)")
            if any(not secret.get_secret_value() for secret in secrets):
                raise ValueError(f"service {service_id!r} has an empty secret")
        return value


class JupiterSettings(BaseModel):
    model_config = _section()

    base_url: str = Field("https://api.jup.ag", description="Jupiter API base (Price v3, Swap v1)")
    api_key: SecretStr | None = Field(None, description="Jupiter API key, sent as x-api-key")
    enabled: bool = Field(False, description="poll Price v3 for the mints the shards watch (live sources); "
                                             "each price joins the stream as a tick")
    timeout_s: float = Field(5.0, gt=0, description="give up on a Jupiter call after this long")
    price_poll_s: float = Field(30.0, gt=0, description="how often the watched mints' prices are polled")
    max_mints: int = Field(500, ge=1, description="most mints priced per poll (50 per request); more are polled in turn")
    requests_per_minute: int = Field(60, ge=1, description="Jupiter's per-account cap (Free: 60; Developer: 600)")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value, ("http", "https"))


class PipelineSettings(BaseModel):
    model_config = _section()

    shard_count: int = Field(4, ge=1, le=1024, description="shard actors; wallets map to one by a stable digest")
    price_shards: int = Field(2, ge=1, le=1024, description="price actors; mints map to one by a stable digest")
    batch_size: int = Field(500, ge=1, description="most items per batch between stages")
    checkpoint_interval_s: float = Field(30.0, gt=0, description="how often shards checkpoint their state")
    queue_max_batches: int = Field(8, ge=1, description="batches buffered between stages before backpressure")


class AnalyzeSettings(BaseModel):
    """The runner of `POST /v1/analyze` jobs: each job's history goes through its own pipeline lane."""

    model_config = _section()

    enabled: bool = Field(True, description="the API (on Ray Serve) and `oof run` keep a runner of queued analyze jobs")
    ray_namespace: str = Field("oof", min_length=1, description="Ray namespace of the runner `oof:analyze` and its lane:"
                               " every API replica and `oof run` find the one runner there")
    default_limit: int = Field(1000, ge=1, le=100_000, description="transactions per wallet when a job names none")
    poll_s: float = Field(2.0, gt=0, description="how often an idle runner looks for queued jobs")
    heartbeat_s: float = Field(10.0, gt=0, description="how often a running job reports progress")
    stale_after_s: float = Field(120.0, gt=0, description="a running job silent this long was orphaned: requeue it")
    max_attempts: int = Field(3, ge=1, description="tries before an interrupted job is marked failed")
    shard_count: int = Field(1, ge=1, le=64, description="shard actors of the analyze lane")
    price_shards: int = Field(1, ge=1, le=64, description="price actors of the analyze lane")
    cpu_budget: float = Field(0.25, gt=0, description="logical CPUs the lane's actors reserve in all")
    start_timeout_s: float = Field(60.0, gt=0, description="a lane whose actors are not all up by then fails the job")


class CardsSettings(BaseModel):
    """Where rendered moment cards are kept: a local directory, or an S3(-compatible) bucket."""

    model_config = _section()

    store: Literal["local", "s3"] = Field("local", description="object store of rendered cards")
    local_dir: Path = Field(Path("var/cards"), description="directory of the local store (relative: to the project)")
    s3_bucket: str | None = Field(None, min_length=3, description="bucket of the s3 store")
    s3_prefix: str = Field("", description="key prefix inside the bucket")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (unset: AWS)")
    s3_region: str | None = Field(None, description="bucket region")
    s3_access_key_id: SecretStr | None = Field(None, description="unset: boto3's own credential chain")
    s3_secret_access_key: SecretStr | None = Field(None, description="unset: boto3's own credential chain")

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, ("http", "https"))

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> Self:
        if self.store == "s3" and not self.s3_bucket:
            raise ValueError("cards.store is s3 but cards.s3_bucket is not set")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("set both cards.s3_access_key_id and cards.s3_secret_access_key, or neither")
        return self

    def local_path(self, root: Path) -> Path:
        return self.local_dir if self.local_dir.is_absolute() else root / self.local_dir


class ApiSettings(BaseModel):
    model_config = _section()

    host: str = Field("127.0.0.1", description="interface the HTTP API binds to")
    port: int = Field(8000, ge=1, le=65535, description="port the HTTP API listens on")
    metrics_token: SecretStr | None = Field(
        None, min_length=16, description="what a Prometheus scraper sends as `Authorization: OOF-Metrics <token>` "
        "(/metrics also takes service tokens; unset: services only)")
    metrics_share_s: float = Field(
        5.0, gt=0, le=60, description="how often each replica publishes its metrics for the others' /metrics "
        "answers (a replica's series in another's answer are at most this old)")


class LogSettings(BaseModel):
    model_config = _section(validate_by_name=True, validate_by_alias=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="lowest level logged")
    # `json` would shadow BaseModel.json(), hence the alias.
    json_logs: bool = Field(True, alias="json", description="JSON lines (true) or human-readable console output")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    """Everything the service can be told; built once in the composition root and handed down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid", frozen=True
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="PostgreSQL")
    redis: RedisSettings = Field(default_factory=RedisSettings, description="Redis (optional)")
    solana: SolanaSettings = Field(default_factory=SolanaSettings, description="chain source")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="detector thresholds")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="user and service authentication")
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings, description="rate limiting")
    jupiter: JupiterSettings = Field(default_factory=JupiterSettings, description="Jupiter price and quote API")
    history_prices: HistoryPricesSettings = Field(default_factory=HistoryPricesSettings,
                                                  description="historical OHLCV for analyze jobs")
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings, description="streaming pipeline sizing")
    analyze: AnalyzeSettings = Field(default_factory=AnalyzeSettings, description="analyze job runner")
    api: ApiSettings = Field(default_factory=ApiSettings, description="HTTP API")
    cards: CardsSettings = Field(default_factory=CardsSettings, description="rendered moment cards")
    log: LogSettings = Field(default_factory=LogSettings, description="logging")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only explicit values: load_settings layers env and files itself, from what it is given.
        return (init_settings,)

    def masked(self) -> dict[str, Any]:
        """The effective configuration as JSON-able data, every secret (and URL password) masked."""
        return cast(dict[str, Any], jsonable_masked(self.model_dump(by_alias=True)))


def load_settings(
    environ: Mapping[str, str], files: Sequence[Path] = (), *, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build `Settings` from files, `environ` and overrides, or raise one `ConfigError` listing every problem."""
    layers = [yaml_layer(Settings, Path(path)) for path in files]
    layers.append(
        env_layer(Settings, environ, prefix=ENV_PREFIX, delimiter=ENV_NESTED_DELIMITER, aliases=ENV_ALIASES)
    )
    if overrides:
        layers.append(value_layer(overrides, "overrides"))
    problems = [problem for layer in layers for problem in layer.problems]
    data, origins = merge_layers(layers)
    try:
        settings = Settings(**data)
    except pydantic.ValidationError as exc:
        # Validate even when a layer failed: the operator should see every problem in one go.
        raise ConfigError([*problems, *validation_problems(Settings, exc, origins)]) from None
    if problems:
        raise ConfigError(problems)
    return settings


def default_config_files(project_root: Path, environ: Mapping[str, str]) -> list[Path]:
    """`configs/oof.yaml` under the project root, then the file named by `OOF_CONFIG` if set."""
    files = [project_root / DEFAULT_CONFIG_FILE]
    if extra := environ.get(CONFIG_FILE_VAR):
        files.append(Path(extra))
    return files

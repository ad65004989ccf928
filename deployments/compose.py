"""The composition root of the HTTP API: settings in, wired dependencies and middleware out.

`build_deps(settings)` builds, once per process (per Serve replica):

- the asyncpg pool (`DATABASE_URL`, or the embedded server) and its `PoolMetrics`;
- a Redis client when `redis.url` is set — None otherwise, and every user of it (rate
  limiter, cache, JWKS cache, HMAC nonces) falls back to process memory;
- `JwksCache` + `DynamicJwtAuth` when `auth.dynamic_environment_id` is set (pre-warmed,
  best effort), `HmacServiceAuth` when `auth.service_secrets` has entries;
- the cards' object store (`cards` settings: a local directory or S3);
- the `RateLimiter`, the two-layer `Cache`, the `ApiMetrics` registry and the health checks;
- a Jupiter Price v3 client when `jupiter.enabled` (`GET /v1/prices`).

`middleware_stack(deps)` is the only place the middleware order is decided (a test pins
`MIDDLEWARE_ORDER`), outermost first:

    request id → access log/metrics → problem+json errors → authenticate → rate limit → routes

Authentication sits before the rate limiter because limits count per principal: a user by
its id, a service by its id, anyone else by client IP (`public`). It never rejects; routes
do (see `deployments.middleware.authenticate`). Liveness, readiness and /metrics are not
rate limited (probes and scrapers must not be throttled into "down").
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import structlog
from fastapi import Request
from redis.asyncio import Redis
from starlette.middleware import Middleware

from core.errors import AuthError, ForbiddenError, OofError
from core.paths import project_root
from core.settings import RateLimitSettings, RedisSettings, Settings
from deployments.active_users import ActiveUsers
from deployments.auth import DynamicJwtAuth, HmacServiceAuth, JwksCache
from deployments.cache import Cache
from deployments.cards.store import LocalFileStore, ObjectStore, store_from_settings
from deployments.health import (
    HealthChecker,
    RunnerState,
    analyze_check,
    database_check,
    jupiter_check,
    jwks_check,
    pipeline_check,
    redis_check,
    solana_rpc_check,
    storage_check,
)
from deployments.metrics import ApiMetrics
from deployments.metrics_share import MetricsShare
from deployments.middleware import (
    AccessLogMiddleware,
    AuthenticateMiddleware,
    ProblemMiddleware,
    RequestIdMiddleware,
    principal_of,
)
from deployments.problems import ProblemHook
from deployments.ratelimit import Decision, RateClassifier, RateLimiter, RateLimitMiddleware
from streams.jupiter import JupiterClient
from streams.storage import PoolMetrics, create_pool, resolve_dsn

__all__ = [
    "Deps",
    "MIDDLEWARE_ORDER",
    "RATE_LIMIT_EXEMPT",
    "build_deps",
    "open_deps",
    "create_redis",
    "middleware_stack",
    "rate_classifier",
    "problem_hook",
    "get_deps",
    "default_instance",
]

log = structlog.get_logger("oof.compose")

MIDDLEWARE_ORDER = (
    RequestIdMiddleware,
    AccessLogMiddleware,
    ProblemMiddleware,
    AuthenticateMiddleware,
    RateLimitMiddleware,
)
RATE_LIMIT_EXEMPT = frozenset({"/health", "/health/ready", "/metrics"})
JWKS_WARM_TIMEOUT_S = 3.0


@dataclass(slots=True)
class Deps:
    """Everything a request handler may use; built by `build_deps`, closed by `aclose`."""

    settings: Settings
    instance: str
    pool: asyncpg.Pool
    pool_metrics: PoolMetrics
    redis: Redis | None
    jwks: JwksCache | None
    user_auth: DynamicJwtAuth | None
    service_auth: HmacServiceAuth | None
    limiter: RateLimiter
    cache: Cache
    metrics: ApiMetrics
    health: HealthChecker
    http: httpx.AsyncClient
    analyze_runner: RunnerState = field(default_factory=RunnerState)  # set by whoever keeps the runner
    cards_store: ObjectStore | None = None  # rendered cards (`cards` settings); always set by `build_deps`
    metrics_share: MetricsShare | None = None  # every replica's metrics in each /metrics answer (via Redis)
    jupiter: JupiterClient | None = None  # Price v3 for `GET /v1/prices`, when `jupiter.enabled`
    active_users: ActiveUsers = field(default_factory=lambda: ActiveUsers(None))  # `oof_active_users`

    @asynccontextmanager
    async def connection(self, query: str) -> AsyncIterator[Any]:
        """A pooled connection for one named query: timed (`oof_db_query_duration_seconds`), bounded wait."""
        with self.metrics.db_timer(query):
            async with self.pool_metrics.acquire() as conn:
                yield conn

    async def aclose(self) -> None:
        await self.pool.close()
        if self.jwks is not None:
            await self.jwks.aclose()
        await self.http.aclose()
        if self.metrics_share is not None:
            await self.metrics_share.aclose()
        if self.jupiter is not None:
            await self.jupiter.aclose()
        await self.active_users.aclose()  # its last batch needs Redis
        if self.redis is not None:
            await self.redis.aclose()


def default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def create_redis(redis: RedisSettings) -> Redis | None:
    """A lazy client (connects on first use) or None when Redis is not configured."""
    if redis.url is None:
        return None
    return Redis.from_url(
        redis.url.get_secret_value(),
        socket_timeout=redis.socket_timeout_s,
        socket_connect_timeout=redis.socket_timeout_s,
        health_check_interval=30,
    )


async def build_deps(
    settings: Settings,
    *,
    instance: str | None = None,
    jwks: JwksCache | None = None,
    namespace: str = "oof:",
    cards_dir: Path | None = None,
    metrics_group: str = "api",
) -> Deps:
    """Wire the API's dependencies from `settings`; `jwks` and `namespace` (Redis key prefix) are for tests."""
    instance = instance or default_instance()
    dsn = await asyncio.to_thread(resolve_dsn, settings.database)  # may start the embedded server: blocking
    pool = await create_pool(settings.database, dsn)
    try:
        return await _wire(settings, pool, instance, jwks, namespace, cards_dir, metrics_group)
    except BaseException:
        await pool.close()
        raise


async def _wire(
    settings: Settings, pool: asyncpg.Pool, instance: str, jwks: JwksCache | None, namespace: str,
    cards_dir: Path | None, metrics_group: str,
) -> Deps:
    redis = create_redis(settings.redis)
    metrics = ApiMetrics(instance)
    auth = settings.auth
    user_auth = None
    if auth.dynamic_environment_id:
        jwks = jwks or JwksCache.from_settings(auth, redis=redis, key_prefix=f"{namespace}jwks:",
                                               on_fetch=metrics.external_call)
        user_auth = DynamicJwtAuth.from_settings(auth, jwks)
        await _warm(jwks)
    else:
        jwks = None
    service_auth = (
        HmacServiceAuth.from_settings(auth, redis=redis, key_prefix=f"{namespace}hmac:")
        if auth.service_secrets else None
    )
    limiter = RateLimiter(settings.rate_limits, redis, key_prefix=f"{namespace}rl")
    cache = Cache(redis, key_prefix=f"{namespace}cache:", on_event=metrics.cache_event)
    http = httpx.AsyncClient(timeout=2.0, follow_redirects=False)
    runner = RunnerState()
    share = MetricsShare(redis, instance, metrics.render, key_prefix=f"{namespace}metrics:{metrics_group}:",
                         interval_s=settings.api.metrics_share_s, ttl_s=max(60.0, 4 * settings.api.metrics_share_s))
    share.start()
    cards_store = LocalFileStore(cards_dir) if cards_dir else store_from_settings(settings.cards, project_root())
    health = HealthChecker([
        database_check(pool),
        redis_check(redis, limiter, cache),
        jwks_check(jwks),
        solana_rpc_check(http, settings.solana.rpc_http_url),
        jupiter_check(http, settings.jupiter),
        storage_check(cards_store),
        pipeline_check(pool, stale_after_s=10 * settings.pipeline.checkpoint_interval_s),
        analyze_check(pool, stale_after_s=settings.analyze.stale_after_s, runner=runner),
    ])
    log.info(
        "api.deps_ready", instance=instance, redis=redis is not None,
        user_auth=user_auth is not None, service_auth=service_auth is not None,
    )
    return Deps(
        settings=settings, instance=instance, pool=pool,
        pool_metrics=PoolMetrics(pool, acquire_timeout_s=settings.database.acquire_timeout_s, name="api"),
        redis=redis, jwks=jwks, user_auth=user_auth, service_auth=service_auth, limiter=limiter,
        cache=cache, metrics=metrics, health=health, http=http, analyze_runner=runner, cards_store=cards_store,
        metrics_share=share,
        jupiter=JupiterClient.from_settings(settings.jupiter, max_attempts=2) if settings.jupiter.enabled else None,
        active_users=ActiveUsers(redis, key_prefix=f"{namespace}active-users:", on_error=metrics.active_users_error),
    )


async def _warm(jwks: JwksCache) -> None:
    try:
        warmed = await asyncio.wait_for(jwks.warm(), JWKS_WARM_TIMEOUT_S)
    except TimeoutError:
        warmed = False
    if not warmed:
        log.warning("api.jwks_not_warm", url=jwks.url)


@asynccontextmanager
async def open_deps(settings: Settings, **options: object) -> AsyncIterator[Deps]:
    deps = await build_deps(settings, **options)  # type: ignore[arg-type]
    try:
        yield deps
    finally:
        await deps.aclose()


async def get_deps(request: Request) -> Deps:
    """FastAPI dependency: the `Deps` the app was built with (`async`: no thread-pool hop)."""
    deps: Deps = request.app.state.deps
    return deps


def rate_classifier(settings: RateLimitSettings, exempt: Collection[str] = RATE_LIMIT_EXEMPT) -> RateClassifier:
    """`classify(scope)` for `RateLimitMiddleware`: the caller's policy (`public` by client IP, `user`,
    `service`), then every route class of `rate_limits.routes` that matches, each counted by its `key`."""
    return RateClassifier(settings, principal_of, exempt=exempt)


class _CountingLimiter:
    """The limiter as the middleware sees it, counting rejections by policy for metrics."""

    def __init__(self, limiter: RateLimiter, metrics: ApiMetrics) -> None:
        self._limiter = limiter
        self._metrics = metrics

    async def check(self, policy_name: str, subject: str) -> Decision:
        decision = await self._limiter.check(policy_name, subject)
        if not decision.allowed:
            self._metrics.rate_limit_rejection(policy_name)
        return decision

    def headers(self, decision: Decision) -> dict[str, str]:
        return self._limiter.headers(decision)


def problem_hook(metrics: ApiMetrics) -> ProblemHook:
    def record(error: OofError) -> None:
        if isinstance(error, AuthError):
            metrics.auth_failure(error.reason)
        elif isinstance(error, ForbiddenError):
            metrics.auth_failure("forbidden")

    return record


def middleware_stack(deps: Deps, *, behind_serve: bool = False) -> Sequence[Middleware]:
    """The API's middleware, outermost first; `[m.cls for m in ...] == MIDDLEWARE_ORDER`.

    `behind_serve`: Ray Serve echoes `X-Request-ID` itself, so ours must not add a second one.
    """
    return [
        Middleware(RequestIdMiddleware, echo=not behind_serve),
        Middleware(AccessLogMiddleware, observe=deps.metrics.observe_request),
        Middleware(ProblemMiddleware, on_problem=problem_hook(deps.metrics)),
        Middleware(
            AuthenticateMiddleware, user_auth=deps.user_auth, service_auth=deps.service_auth,
            on_principal=deps.active_users.record,
        ),
        Middleware(
            RateLimitMiddleware,
            limiter=_CountingLimiter(deps.limiter, deps.metrics),
            classify=rate_classifier(deps.settings.rate_limits),
        ),
    ]

"""Dependency checks for `/health/ready` and `/health/detailed`.

Each `Check` has a name, a `critical` flag and its own timeout; `HealthChecker.run` runs the
selected checks concurrently (`asyncio.wait_for` per check) and aggregates:

- `down`: a critical dependency (the database) is down — readiness fails (503);
- `degraded`: an optional dependency is down or degraded (Redis stopped: rate limits and
  caches fall back to process memory and say so; JWKS stale; Solana RPC unreachable; ...);
- `ok`: everything answered.

A check reports `ok`, `degraded`, `down` or `disabled` (not configured), its `latency_ms`
and a `detail` map. Details are for operators (`/health/detailed` is service-only) but
still carry no secrets: errors are reduced to their type and client-safe message.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import OofError
from core.settings import JupiterSettings
from deployments.auth import JwksCache
from deployments.cache import Cache
from deployments.cards.store import ObjectStore
from deployments.ratelimit import RateLimiter
from streams.storage import health_check, pool_liveness

__all__ = [
    "Status",
    "CheckResult",
    "Check",
    "HealthChecker",
    "aggregate",
    "database_check",
    "redis_check",
    "jwks_check",
    "solana_rpc_check",
    "jupiter_check",
    "storage_check",
    "pipeline_check",
    "analyze_check",
    "RunnerState",
]

Status = Literal["ok", "degraded", "down", "disabled"]
SOL_MINT = "So11111111111111111111111111111111111111112"


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: Status
    detail: Mapping[str, Any] = field(default_factory=dict)


Probe = Callable[[], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    critical: bool
    timeout_s: float
    probe: Probe


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc.detail}" if isinstance(exc, OofError) else type(exc).__name__


def aggregate(results: Mapping[str, Mapping[str, Any]]) -> Status:
    if any(r["critical"] and r["status"] == "down" for r in results.values()):
        return "down"
    if any(r["status"] in ("down", "degraded") for r in results.values()):
        return "degraded"
    return "ok"


class HealthChecker:
    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = {check.name: check for check in checks}

    async def run(self, names: Collection[str] | None = None) -> dict[str, Any]:
        """`{"status", "checks": {name: {status, critical, latency_ms, detail}}}` for the selected checks."""
        selected = [c for c in self.checks.values() if names is None or c.name in names]
        outcomes = await asyncio.gather(*(self._one(check) for check in selected))
        results = {check.name: outcome for check, outcome in zip(selected, outcomes, strict=True)}
        return {"status": aggregate(results), "checks": results}

    async def critical(self) -> dict[str, Any]:
        return await self.run([c.name for c in self.checks.values() if c.critical])

    @staticmethod
    async def _one(check: Check) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(check.probe(), check.timeout_s)
        except TimeoutError:
            result = CheckResult("down", {"error": f"no answer within {check.timeout_s} s"})
        except Exception as exc:  # noqa: BLE001 - a failing probe is a finding, not a crash
            result = CheckResult("down", {"error": _error(exc)})
        return {
            "status": result.status,
            "critical": check.critical,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "detail": dict(result.detail),
        }


def database_check(pool: asyncpg.Pool, *, timeout_s: float = 2.0) -> Check:
    async def probe() -> CheckResult:
        await health_check(pool, timeout=timeout_s)
        live = pool_liveness(pool)  # the pool's own periodic ping (database.health_check_interval_s)
        return CheckResult("ok", {"pool_size": pool.get_size(), "pool_idle": pool.get_idle_size(),
                                  "liveness": None if live is None else live.snapshot()})

    return Check("database", True, timeout_s, probe)


def redis_check(redis: Redis | None, limiter: RateLimiter, cache: Cache, *, timeout_s: float = 1.0) -> Check:
    async def probe() -> CheckResult:
        if redis is None:
            return CheckResult("disabled", {"fallback": "in-process rate limits, caches and HMAC nonces"})
        try:
            await redis.ping()
        except (RedisError, OSError) as exc:
            return CheckResult("down", {
                "error": type(exc).__name__,
                "rate_limiter": "memory (fallback)",
                "rate_limiter_backend": limiter.backend,
                "cache": "local only (fallback)",
            })
        return CheckResult("ok", {"rate_limiter_backend": limiter.backend, "cache_degraded": cache.redis_degraded})

    return Check("redis", False, timeout_s, probe)


def jwks_check(jwks: JwksCache | None, *, timeout_s: float = 3.0) -> Check:
    async def probe() -> CheckResult:
        if jwks is None:
            return CheckResult("disabled", {"note": "user (Dynamic JWT) authentication is not configured"})
        await jwks.warm()
        health = jwks.health()
        status: Status = {"ok": "ok", "stale": "degraded"}.get(health.status, "down")  # type: ignore[assignment]
        detail = health.as_dict()
        detail["last_error"] = detail["last_error"].split(":")[0] if detail["last_error"] else None
        return CheckResult(status, detail)

    return Check("jwks", False, timeout_s, probe)


def solana_rpc_check(http: httpx.AsyncClient, url: str, *, timeout_s: float = 2.0) -> Check:
    async def probe() -> CheckResult:
        response = await http.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"}, timeout=timeout_s
        )
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code == 200 and body.get("result") == "ok":
            return CheckResult("ok")
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else f"HTTP {response.status_code}"
        return CheckResult("degraded" if response.status_code == 200 else "down", {"error": str(message)[:200]})

    return Check("solana_rpc", False, timeout_s, probe)


def jupiter_check(http: httpx.AsyncClient, jupiter: JupiterSettings, *, timeout_s: float = 2.0) -> Check:
    async def probe() -> CheckResult:
        if not jupiter.enabled:
            return CheckResult("disabled", {"note": "jupiter.enabled is false"})
        headers = {"x-api-key": jupiter.api_key.get_secret_value()} if jupiter.api_key else {}
        response = await http.get(
            f"{jupiter.base_url.rstrip('/')}/price/v3", params={"ids": SOL_MINT}, headers=headers, timeout=timeout_s
        )
        if response.status_code == 200:
            return CheckResult("ok")
        return CheckResult("down", {"error": f"HTTP {response.status_code}"})

    return Check("jupiter", False, timeout_s, probe)


async def _store_probe(store: ObjectStore) -> dict[str, Any]:
    key = f"health/probe-{secrets.token_hex(6)}"
    payload = secrets.token_bytes(32)
    try:
        await store.put(key, payload)
        if await store.get(key) != payload:
            raise OSError("read back differs from what was written")
    finally:
        await store.delete(key)
    detail = store.describe()
    if detail.get("store") == "local":
        detail["free_bytes"] = shutil.disk_usage(detail["path"]).free
    return detail


def storage_check(store: ObjectStore, *, timeout_s: float = 2.0) -> Check:
    """The cards' object store takes a write, gives it back and deletes it — a real check, local or S3."""

    async def probe() -> CheckResult:
        return CheckResult("ok", await _store_probe(store))

    return Check("storage", False, timeout_s, probe)


_PIPELINE_SQL = """
SELECT (SELECT max(updated_at) FROM shard_checkpoints) AS checkpoint_at,
       (SELECT max(block_time) FROM transactions) AS newest_block_time,
       now() AS db_now
"""


def pipeline_check(pool: asyncpg.Pool, *, stale_after_s: float, timeout_s: float = 2.0) -> Check:
    """Pipeline lag from what it wrote: the newest shard checkpoint and the newest transaction."""

    async def probe() -> CheckResult:
        async with pool.acquire(timeout=timeout_s) as conn:
            row = await conn.fetchrow(_PIPELINE_SQL, timeout=timeout_s)
        now = row["db_now"]
        checkpoint, newest = row["checkpoint_at"], row["newest_block_time"]
        detail = {
            "checkpoint_age_s": None if checkpoint is None else round((now - checkpoint).total_seconds(), 1),
            "newest_transaction_age_s": None if newest is None else round((now - newest).total_seconds(), 1),
            "stale_after_s": stale_after_s,
        }
        if checkpoint is None:
            return CheckResult("ok", {**detail, "note": "no shard checkpoint yet (pipeline not started)"})
        stale = detail["checkpoint_age_s"] > stale_after_s
        return CheckResult("degraded" if stale else "ok", detail)

    return Check("pipeline", False, timeout_s, probe)


_ANALYZE_SQL = """
SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
       count(*) FILTER (WHERE status = 'running') AS running,
       min(created_at) FILTER (WHERE status = 'queued') AS oldest_queued_at,
       now() AS db_now
FROM analyze_jobs WHERE status IN ('queued', 'running')
"""


@dataclass(slots=True)
class RunnerState:
    """What this process knows of the analyze runner, for the `analyze` check.

    `unmanaged`: nothing here starts one (uvicorn, tests); `disabled`: `analyze.enabled` is
    false; `starting` / `running` / `unavailable`: an API replica on Ray Serve keeps
    `oof:analyze` (`deployments.analyze_runner`) and says how that went."""

    state: Literal["unmanaged", "disabled", "starting", "running", "unavailable"] = "unmanaged"
    detail: dict[str, Any] = field(default_factory=dict)

    def set(self, state: Literal["disabled", "starting", "running", "unavailable"], **detail: Any) -> None:
        self.state, self.detail = state, detail


_IDLE_QUEUE_NOTES = {
    "unmanaged": "queued jobs wait and none runs: no analyze runner takes them here (the API on Ray Serve"
                 " or `oof run` starts oof:analyze)",
    "disabled": "queued jobs wait and none runs: analyze.enabled is false, so this API starts no runner",
    "starting": "queued jobs wait and none runs: oof:analyze is still starting",
    "running": "queued jobs wait and none runs although oof:analyze is up: see its analyze_* logs",
}


def analyze_check(pool: asyncpg.Pool, *, stale_after_s: float, runner: RunnerState | None = None,
                  timeout_s: float = 2.0) -> Check:
    """The analyze queue and its runner: degraded when Ray could not start the runner this API
    keeps, and when a job has waited `stale_after_s` while none runs (the note says why)."""
    runner = runner or RunnerState()

    async def probe() -> CheckResult:
        async with pool.acquire(timeout=timeout_s) as conn:
            row = await conn.fetchrow(_ANALYZE_SQL, timeout=timeout_s)
        oldest = row["oldest_queued_at"]
        waited = None if oldest is None else round((row["db_now"] - oldest).total_seconds(), 1)
        detail = {"queued": row["queued"], "running": row["running"], "oldest_queued_s": waited,
                  "stale_after_s": stale_after_s, "runner": {"state": runner.state, **runner.detail}}
        if runner.state == "unavailable":
            return CheckResult("degraded", {**detail, "note": "Ray could not start the analyze runner"
                                            " (oof:analyze): queued jobs wait until it can"})
        if waited is not None and waited > stale_after_s and row["running"] == 0:
            return CheckResult("degraded", {**detail, "note": _IDLE_QUEUE_NOTES[runner.state]})
        return CheckResult("ok", detail)

    return Check("analyze", False, timeout_s, probe)

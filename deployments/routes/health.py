"""Operational endpoints: liveness, readiness, the detailed dependency report, Prometheus metrics.

- `GET /health` — liveness: no dependency touched, always fast. Public, not rate limited.
- `GET /health/ready` — readiness: critical dependencies (the database); 503 problem when one
  is down. Public, not rate limited.
- `GET /health/detailed` — every dependency with status, critical flag and latency; service
  callers only (it names internal hosts' states), rate limited as a service.
- `GET /metrics` — Prometheus text of the answering replica. **Public**, like the health
  probes, and not rate limited: it holds aggregate counters only (route templates, reasons,
  policies, kinds, a count of active users), no per-user data and no secrets, and the API
  binds 127.0.0.1 by default. Prometheus cannot sign OOF-HMAC requests, and behind Serve's
  HAProxy every peer is 127.0.0.1, so a "loopback only" rule would be a false sense of
  security; restrict the path at the load balancer if the port is exposed (docs/SERVE.md).
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.responses import Response

from core.errors import OofError
from deployments.auth import Principal
from deployments.compose import Deps, get_deps
from deployments.metrics import ACTIVE_USERS_TTL_S, MOMENT_STATS_TTL_S, moment_stats_from_rows, moment_stats_query
from deployments.middleware import SERVICES_ONLY, check_metrics_caller, service_caller
from deployments.problems import problem_responses

__all__ = ["router", "NotReadyError", "Liveness", "HealthReport"]

router = APIRouter(tags=["operations"])
log = structlog.get_logger("oof.api")


class NotReadyError(OofError):
    """A critical dependency is down: this replica should not get traffic (503)."""

    type_slug = "not-ready"
    title = "Service not ready"
    status = 503

    def __init__(self, report: dict[str, Any]) -> None:
        self.checks = {name: check["status"] for name, check in report["checks"].items()}
        down = sorted(name for name, status in self.checks.items() if status == "down")
        super().__init__(f"critical dependency down: {', '.join(down)}")

    def extensions(self) -> dict[str, Any]:
        return {"checks": self.checks}


class Liveness(BaseModel):
    status: str = "ok"


class CheckReport(BaseModel):
    status: str = Field(description="ok | degraded | down | disabled")
    critical: bool
    latency_ms: float
    detail: dict[str, Any]


class HealthReport(BaseModel):
    status: str = Field(description="ok | degraded (an optional dependency is down) | down (a critical one is)")
    checks: dict[str, CheckReport]
    instance: str | None = None


@router.get("/health", response_model=Liveness, summary="Liveness (no dependencies)", openapi_extra={"security": []})
async def liveness() -> Liveness:
    return Liveness()


@router.get(
    "/health/ready",
    response_model=HealthReport,
    summary="Readiness: critical dependencies",
    responses=problem_responses(503),
    openapi_extra={"security": []},
)
async def readiness(deps: Annotated[Deps, Depends(get_deps)]) -> HealthReport:
    report = await deps.health.critical()
    if report["status"] == "down":
        raise NotReadyError(report)
    return HealthReport(**report, instance=deps.instance)


@router.get(
    "/health/detailed",
    response_model=HealthReport,
    summary="Every dependency: status, critical flag, latency (service callers only)",
    responses=problem_responses(401, 403, 429),
    openapi_extra=SERVICES_ONLY,
)
async def detailed_health(
    _: Annotated[Principal, Depends(service_caller)], deps: Annotated[Deps, Depends(get_deps)]
) -> HealthReport:
    report = await deps.health.run()
    return HealthReport(**report, instance=deps.instance)


async def _moment_stats(deps: Deps) -> dict[str, Any]:
    async with deps.connection("moment_stats") as conn:
        return moment_stats_from_rows(await conn.fetch(moment_stats_query))


@router.get(
    "/metrics",
    summary="Prometheus metrics of every live replica (services, or a scraper with `OOF-Metrics <api.metrics_token>`)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "metrics"},
               **problem_responses(401, 403)},
    openapi_extra={"security": [{"serviceHmac": []}, {"metricsToken": []}]},
)
async def metrics(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> Response:
    token = deps.settings.api.metrics_token
    check_metrics_caller(request, None if token is None else token.get_secret_value())
    try:
        stats = await deps.cache.get_or_compute(
            "metrics:moment-stats:v1", MOMENT_STATS_TTL_S, lambda: _moment_stats(deps)
        )
    except OofError as exc:  # the database is down: serve the rest, flag the business metrics stale
        log.warning("metrics.moment_stats_failed", error=exc.detail)
        stats = None
    deps.metrics.set_moment_stats(stats)
    # Never raises: counted from Redis (every replica), else from this replica's memory fallback.
    deps.metrics.set_active_users(
        await deps.cache.get_or_compute("metrics:active-users:v1", ACTIVE_USERS_TTL_S, deps.active_users.counts)
    )
    deps.metrics.ratelimit_backend.set(1 if deps.limiter.backend == "memory" else 0)
    body = await deps.metrics_share.answer() if deps.metrics_share is not None else deps.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)

"""The API's route groups, one module each; `app.build_app` mounts every router in `ROUTERS`.

To add a group: write `deployments/routes/<group>.py` with an `APIRouter` named `router`
(prefix `/v1` or `/v2`, its own tag), declare `responses=problem_responses(...)` and an
`openapi_extra` security requirement (`ANY_CALLER`, `USERS_ONLY`, `SERVICES_ONLY` from
`deployments.middleware`) on each route, and append it below. Take the caller with
`Depends(caller | user_caller | service_caller)` and dependencies with `Depends(get_deps)`.
"""

from fastapi import APIRouter

from deployments.routes import admin, analyze, cards, health, link, moments, prices, stream, v2, wallets

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    health.router,  # /health, /health/ready, /health/detailed, /metrics
    moments.router,  # /v1/moments, /v1/moments/{moment_id}
    wallets.router,  # /v1/wallets/{wallet}/summary
    v2.router,  # /v2/moments
    link.router,  # /v1/wallets/link/nonce, /v1/wallets/link, /v1/wallets
    analyze.router,  # /v1/analyze, /v1/analyze/{job_id}
    stream.router,  # /v1/stream/moments (SSE)
    cards.router,  # /v1/cards/moment/{moment_id}.png
    prices.router,  # /v1/prices
    admin.router,  # /v1/admin/checkpoints (services only)
)

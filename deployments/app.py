"""`build_app(settings, deps)`: the FastAPI application of the OOF API.

The same function builds the app for tests (httpx `ASGITransport`, no Ray), for plain
uvicorn (`oof bench api` baseline) and inside each Ray Serve replica
(`deployments/serve_app.py`), so all three run identical middleware and routes. Everything
(middleware in the order `compose.middleware_stack` decides, exception handlers, routers)
is attached here, before the app serves anything.

The OpenAPI document (`/openapi.json`, UI at `/docs`) declares both auth schemes
(`dynamicJwt` bearer, `serviceHmac` apiKey) and, per route, its security requirement and
its problem responses, filed under `application/problem+json`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from core.settings import Settings
from deployments.compose import Deps, middleware_stack, problem_hook
from deployments.middleware import SECURITY_SCHEMES
from deployments.problems import PROBLEM_MEDIA_TYPE, install_exception_handlers
from deployments.routes import ROUTERS

__all__ = ["build_app", "API_TITLE", "API_VERSION"]

API_TITLE = "OOF API"
API_VERSION = "1.0.0"
_DESCRIPTION = """\
Moments: Solana trading mistakes (sold too early, bag-holder drawdown, bad route, idle
yield, rugged token) detected from on-chain activity.

Every error is `application/problem+json` (RFC 9457) with a stable `type`
(`https://oof.dev/problems/<slug>`) and the `request_id` to quote. Send `X-Request-ID`
(1-128 of `[A-Za-z0-9._-]`) to choose it. Rate limits answer 429 with `Retry-After`,
`RateLimit` and `RateLimit-Policy`.
"""


def build_app(settings: Settings, deps: Deps, *, behind_serve: bool = False) -> FastAPI:
    """The API over `deps` (see `compose.build_deps`); `settings` is what `deps` was built from.

    `behind_serve=True` inside a Serve replica (Serve adds the `X-Request-ID` response header).
    """
    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        description=_DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        middleware=list(middleware_stack(deps, behind_serve=behind_serve)),
    )
    app.state.settings = settings
    app.state.deps = deps
    install_exception_handlers(app, problem_hook(deps.metrics))
    for router in ROUTERS:
        app.include_router(router)
    # For the access log's route label of requests answered before routing (401, 429).
    app.state.route_templates = [
        (route.path_regex, route.path_format) for router in ROUTERS for route in router.routes
        if hasattr(route, "path_regex") and hasattr(route, "path_format")
    ]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _openapi_document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.isdigit() and int(status) >= 400 and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return document

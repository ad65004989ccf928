"""Pure-ASGI middleware of the HTTP API, one concern per module.

The order is decided once, in `deployments.compose.middleware_stack` (outermost first):
request id → access log + metrics → problem+json errors → authentication → rate limit → routes.
"""

from deployments.middleware.access_log import UNMATCHED_ROUTE, AccessLogMiddleware, Observe, route_template
from deployments.middleware.authenticate import (
    ANY_CALLER,
    AUTH_SCOPE_KEY,
    SECURITY_SCHEMES,
    SERVICES_ONLY,
    USERS_ONLY,
    AuthenticateMiddleware,
    AuthOutcome,
    auth_outcome,
    caller,
    check_metrics_caller,
    principal_of,
    service_caller,
    user_caller,
)
from deployments.middleware.errors import ProblemMiddleware
from deployments.middleware.request_id import (
    REQUEST_ID_HEADER,
    REQUEST_ID_SCOPE_KEY,
    RequestIdMiddleware,
    request_id_of,
    valid_request_id,
)

__all__ = [
    "ANY_CALLER",
    "AUTH_SCOPE_KEY",
    "SECURITY_SCHEMES",
    "SERVICES_ONLY",
    "USERS_ONLY",
    "REQUEST_ID_HEADER",
    "REQUEST_ID_SCOPE_KEY",
    "UNMATCHED_ROUTE",
    "AccessLogMiddleware",
    "AuthOutcome",
    "AuthenticateMiddleware",
    "Observe",
    "ProblemMiddleware",
    "RequestIdMiddleware",
    "auth_outcome",
    "caller",
    "principal_of",
    "request_id_of",
    "route_template",
    "service_caller",
    "user_caller",
    "valid_request_id",
]

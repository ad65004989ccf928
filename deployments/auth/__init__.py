"""Authentication for the HTTP API: Dynamic.xyz user tokens and HMAC-signed service calls.

Each scheme answers `authenticate(...) -> Principal | None`: None means "no credential of
mine here", so the next scheme may try; a bad credential raises `AuthError` (401, stable
`reason`). `deployments.auth.testing` holds key and token helpers for tests.
"""

from deployments.auth.dynamic_jwt import ADDITIONAL_AUTH_SCOPE, BEARER_SCHEME, USER_BASIC_SCOPE, DynamicJwtAuth
from deployments.auth.hmac_service import HMAC_SCHEME, HmacServiceAuth, service_authorization, sign_service_request
from deployments.auth.jwks import JwksCache, JwksHealth, JwksUnavailableError
from deployments.auth.principal import Principal, PrincipalKind, require_service, require_user

__all__ = [
    "ADDITIONAL_AUTH_SCOPE",
    "BEARER_SCHEME",
    "HMAC_SCHEME",
    "USER_BASIC_SCOPE",
    "DynamicJwtAuth",
    "HmacServiceAuth",
    "JwksCache",
    "JwksHealth",
    "JwksUnavailableError",
    "Principal",
    "PrincipalKind",
    "require_service",
    "require_user",
    "service_authorization",
    "sign_service_request",
]

"""Service authentication: HMAC-signed requests, `Authorization: OOF-HMAC <service_id>.<unix_ts>.<hex sig>`.

`sig` = HMAC-SHA256(secret, f"{service_id}.{ts}.{METHOD}.{path}.{sha256_hex(body)}"), where
`path` is the request target as sent, query string included (`/v1/admin/replay?dry=1`), so a
token is bound to one method, path and body. A token is accepted once, within
`window_s` of the server clock either way. Each service has one secret, two while rotating;
both are always compared (`hmac.compare_digest`, bytes), so timing does not tell which.

Replays are refused through a nonce per signature: `SET oof:hmac:{service_id}:{sig} 1 NX EX
2*window_s` in Redis (shared by replicas), always mirrored in an in-process TTL cache. While
Redis is down or unset the in-process cache alone decides, and it is per replica: a token
replayed to another replica inside the window is then not detected (`health()` says so).
Unknown service ids fail exactly like bad signatures, so ids cannot be probed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cachetools import TTLCache
from pydantic import SecretStr
from redis.asyncio import Redis

from core.errors import AuthError
from core.settings import AuthSettings
from deployments.auth._redis import RedisGate
from deployments.auth.principal import Principal

__all__ = ["HMAC_SCHEME", "HmacServiceAuth", "sign_service_request", "service_authorization"]

HMAC_SCHEME = "OOF-HMAC"
MAX_TOKEN_CHARS = 512
_SIG_HEX_CHARS = 64
_DUMMY_SECRET = b"\x00" * 32  # keeps unknown-service failures as slow as bad signatures

Secret = SecretStr | str | bytes


def _secret_bytes(secret: Secret) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else secret


def _signing_input(service_id: str, ts: str, method: str, path: str, body: bytes) -> bytes:
    return f"{service_id}.{ts}.{method.upper()}.{path}.{hashlib.sha256(body).hexdigest()}".encode()


def sign_service_request(service_id: str, secret: Secret, method: str, path: str, body: bytes, ts: int) -> str:
    """The token `<service_id>.<ts>.<hex sig>` for one request; send it as `OOF-HMAC <token>`."""
    if not service_id or "." in service_id:
        raise ValueError("service id must be non-empty and must not contain '.'")
    sig = hmac.new(_secret_bytes(secret), _signing_input(service_id, str(ts), method, path, body), hashlib.sha256)
    return f"{service_id}.{ts}.{sig.hexdigest()}"


def service_authorization(service_id: str, secret: Secret, method: str, path: str, body: bytes, ts: int) -> str:
    """The whole `Authorization` header value for an internal call."""
    return f"{HMAC_SCHEME} {sign_service_request(service_id, secret, method, path, body, ts)}"


def _fail(reason: str, detail: str, internal: str | None = None) -> AuthError:
    return AuthError(detail, reason=reason, internal=internal)


def _malformed(internal: str) -> AuthError:
    return _fail("token_malformed", "the service token is malformed", internal)


class HmacServiceAuth:
    """Turns an `OOF-HMAC` header into a service `Principal`; None when the request carries another scheme."""

    def __init__(
        self,
        secrets: Mapping[str, Sequence[Secret]],
        *,
        window_s: float = 300.0,
        redis: Redis | None = None,
        key_prefix: str = "oof:hmac:",
        max_local_nonces: int = 200_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secrets = {service: [_secret_bytes(s) for s in live] for service, live in secrets.items()}
        for service, live in self._secrets.items():
            if not service or "." in service or not 1 <= len(live) <= 2 or not all(live):
                raise ValueError(f"service {service!r}: id without '.', one or two non-empty secrets")
        self._window_s = window_s
        self._nonce_ttl_s = max(1, int(2 * window_s))  # outlives the ±window in which a token is acceptable
        self._redis = RedisGate(redis)
        self._key_prefix = key_prefix
        # Sized for the service rate limit (6000/min) over the nonce TTL; eviction of a live nonce would allow a replay.
        self._local: TTLCache[str, bool] = TTLCache(maxsize=max_local_nonces, ttl=self._nonce_ttl_s, timer=timer)

    @classmethod
    def from_settings(cls, auth: AuthSettings, *, redis: Redis | None = None, **options: Any) -> HmacServiceAuth:
        return cls(auth.service_secrets, window_s=auth.hmac_window_s, redis=redis, **options)

    async def authenticate(
        self, authorization_header: str | None, method: str, path: str, body: bytes, now: float
    ) -> Principal | None:
        """Verify the header for this request at `now` (the caller passes `time.time()`)."""
        if not authorization_header:
            return None
        scheme, _, token = authorization_header.strip().partition(" ")
        if scheme.upper() != HMAC_SCHEME:
            return None
        service_id, ts_text, sig = self._split(token.strip())
        ts = int(ts_text)
        if abs(now - ts) > self._window_s:
            raise _fail("token_stale", "the service token is outside the time window", f"skew {now - ts:.0f}s")
        message = _signing_input(service_id, ts_text, method, path, body)
        secrets = self._secrets.get(service_id)
        candidates = secrets if secrets is not None else [_DUMMY_SECRET]
        given = bytes.fromhex(sig)
        # A list, not any(generator): every live secret is compared, whichever matches.
        matches = [hmac.compare_digest(hmac.new(s, message, hashlib.sha256).digest(), given) for s in candidates]
        if secrets is None or not any(matches):
            internal = "unknown service id" if secrets is None else "no live secret matches"
            raise _fail("signature_invalid", "the service token signature is invalid", f"{internal}: {service_id!r}")
        if not await self._first_use(service_id, sig):
            raise _fail("token_replayed", "the service token was already used", f"service {service_id!r}")
        return Principal(
            kind="service", id=service_id, claims={"ts": ts, "method": method.upper(), "path": path}
        )

    def health(self) -> dict[str, Any]:
        redis = self._redis.health()
        return {
            "redis": redis,
            "nonce_store": "redis" if redis["state"] == "ok" else "memory (per replica)",
            "local_nonces": len(self._local),
        }

    @staticmethod
    def _split(token: str) -> tuple[str, str, str]:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise _malformed(f"token length {len(token)}")
        parts = token.rsplit(".", 2)
        if len(parts) != 3:
            raise _malformed("expected <service_id>.<unix_ts>.<hex sig>")
        service_id, ts_text, sig = parts
        if not service_id or "." in service_id:
            raise _malformed("bad service id")
        # ASCII digits only: int() would also take '+1', ' 1', '1_000' or Unicode digits.
        if not (ts_text.isascii() and ts_text.isdigit() and len(ts_text) <= 12):
            raise _malformed("timestamp is not unix seconds")
        # Lowercase only: the nonce is keyed by this text, and 'AB..' must not be a fresh nonce for 'ab..'.
        if len(sig) != _SIG_HEX_CHARS or not all(c in "0123456789abcdef" for c in sig):
            raise _malformed("signature is not 64 lowercase hex digits")
        return service_id, ts_text, sig

    async def _first_use(self, service_id: str, sig: str) -> bool:
        key = f"{self._key_prefix}{service_id}:{sig}"
        if key in self._local:
            return False
        self._local[key] = True  # mirrored so this replica still refuses replays if Redis drops out
        answered, fresh = await self._redis.call(
            lambda r: r.set(key, 1, nx=True, ex=self._nonce_ttl_s), what="hmac.nonce"
        )
        return bool(fresh) if answered else True

"""Dynamic's signing keys (JWKS), fetched with async HTTP and cached in Redis and in-process.

Lookup order: the in-process cache (fresh for `ttl_s` after the fetch), then Redis (shared by
replicas, same TTL), then Dynamic over HTTP. A `kid` we do not hold triggers at most one
refetch per `refetch_cooldown_s`, single-flight, so a burst of forged kids costs Dynamic one
request. When Dynamic is unreachable the last good set keeps being served past its TTL and
`health()` says `stale`; with nothing ever fetched, lookups raise `JwksUnavailableError` (503).

Only RSA keys with a `kid`, `use` "sig" (or absent), `alg` RS256 (or absent) and at least
2048 bits are kept. Keys are built with `jwt.PyJWK`, so nothing here blocks the event loop
(PyJWKClient would: it fetches with urllib under a lock).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog
from cachetools import TLRUCache
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK
from jwt.exceptions import PyJWTError
from redis.asyncio import Redis

from core.errors import AuthError
from core.settings import AuthSettings
from deployments.auth._redis import RedisGate, RedisState

__all__ = ["JwksCache", "JwksHealth", "JwksSource", "JwksUnavailableError", "parse_jwks"]

log = structlog.get_logger(__name__)

JwksSource = Literal["memory", "redis", "http"]
MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = 256 * 1024  # Dynamic serves one key; anything this large is not a JWKS
_SLOT = "jwks"  # the in-process cache holds a single entry: the current key set


class JwksUnavailableError(AuthError):
    """No signing keys to verify with (Dynamic unreachable, nothing cached): 503, reason `jwks_unavailable`.

    An `AuthError` so the auth layer handles one family, but 503 with its own problem type:
    the client did nothing wrong and should retry.
    """

    type_slug = "auth-unavailable"
    status = 503
    title = "Authentication unavailable"

    def __init__(self, detail: str | None = None, *, internal: str | None = None) -> None:
        super().__init__(
            detail or "tokens cannot be verified right now; retry shortly", reason="jwks_unavailable", internal=internal
        )


@dataclass(frozen=True, slots=True)
class _KeySet:
    keys: Mapping[str, PyJWK]
    document: str  # the JWKS JSON as Dynamic served it; what Redis stores
    fetched_at: float  # `clock()` time of the HTTP fetch, carried through Redis so age stays honest


@dataclass(frozen=True, slots=True)
class JwksHealth:
    """What `/health/detailed` reports for the JWKS dependency."""

    status: Literal["ok", "stale", "unavailable", "cold"]
    stale: bool  # serving keys past their TTL because refreshing failed
    source: JwksSource | None  # where the latest lookup got its keys
    last_fetch_ok: bool | None  # outcome of the latest HTTP fetch; None before the first
    last_fetch_at: float | None
    last_error: str | None  # operator-facing only
    age_s: float | None  # since the held key set was fetched from Dynamic
    key_ids: tuple[str, ...]
    redis: RedisState

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_jwks(document: str | bytes) -> dict[str, PyJWK]:
    """The usable RS256 verification keys of a JWKS document, by kid; `ValueError` if there are none."""
    data = json.loads(document)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys: dict[str, PyJWK] = {}
    for jwk in data["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        try:
            key = PyJWK(jwk, algorithm="RS256")
        except PyJWTError:
            continue
        # A JWK with private members would load as a private key: never trust such a set entry.
        if isinstance(key.key, RSAPublicKey) and key.key.key_size >= MIN_RSA_BITS:
            keys[kid] = key
    if not keys:
        raise ValueError("JWKS has no usable RS256 signing key")
    return keys


class JwksCache:
    """Signing keys by kid for one JWKS URL; one instance per process (per Serve replica)."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 300.0,
        redis: Redis | None = None,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 5.0,
        refetch_cooldown_s: float = 30.0,
        failure_backoff_s: float = 10.0,
        key_prefix: str = "oof:jwks:",
        clock: Callable[[], float] = time.time,
        on_fetch: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.url = url
        self._ttl_s = ttl_s
        self._timeout = httpx.Timeout(timeout_s)
        self._refetch_cooldown_s = refetch_cooldown_s
        self._failure_backoff_s = failure_backoff_s
        self._clock = clock
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        self._redis = RedisGate(redis)
        self._redis_key = key_prefix + hashlib.sha256(url.encode()).hexdigest()
        self._fresh: TLRUCache[str, _KeySet] = TLRUCache(
            maxsize=1, ttu=lambda _key, keyset, _now: keyset.fetched_at + ttl_s, timer=clock
        )
        self._last_good: _KeySet | None = None  # kept past its TTL: the stale fallback
        self._lock = asyncio.Lock()  # single flight for every fetch
        self._stale = False
        self._source: JwksSource | None = None
        self._last_fetch_ok: bool | None = None
        self._last_fetch_at: float | None = None
        self._last_failure_at: float | None = None
        self._last_error: str | None = None
        self._last_forced_at: float | None = None
        self._on_fetch = on_fetch  # (service, outcome, seconds) per HTTP fetch: the API's external-call metric

    @classmethod
    def from_settings(cls, auth: AuthSettings, *, redis: Redis | None = None, **options: Any) -> JwksCache:
        if not auth.jwks_url:
            raise ValueError("auth.jwks_url (or auth.dynamic_environment_id) must be set for Dynamic JWT auth")
        return cls(auth.jwks_url, ttl_s=auth.jwks_cache_ttl_s, redis=redis, **options)

    @property
    def redis_key(self) -> str:
        return self._redis_key

    async def get_key(self, kid: str) -> PyJWK | None:
        """The key for `kid`, or None if Dynamic does not list it even after a (rate-bounded) refetch.

        Raises `JwksUnavailableError` when no key set is held and Dynamic cannot be reached.
        """
        keyset = await self._current()
        if (key := keyset.keys.get(kid)) is not None:
            return key
        refreshed = await self._refetch_for(kid)
        return None if refreshed is None else refreshed.keys.get(kid)

    async def warm(self) -> bool:
        """Load keys now (start-up pre-warm); True when a key set is held afterwards."""
        try:
            await self._current()
        except JwksUnavailableError:
            return False
        return True

    def health(self) -> JwksHealth:
        held = self._last_good
        status: Literal["ok", "stale", "unavailable", "cold"]
        if held is None:
            status = "cold" if self._last_fetch_ok is None else "unavailable"
        else:
            status = "stale" if self._stale else "ok"
        return JwksHealth(
            status=status,
            stale=held is not None and self._stale,
            source=self._source,
            last_fetch_ok=self._last_fetch_ok,
            last_fetch_at=self._last_fetch_at,
            last_error=self._last_error,
            age_s=None if held is None else max(0.0, self._clock() - held.fetched_at),
            key_ids=tuple(sorted(held.keys)) if held else (),
            redis=self._redis.state,
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _current(self) -> _KeySet:
        if (keyset := self._fresh.get(_SLOT)) is not None:
            self._source = "memory"
            return keyset
        if self._lock.locked() and self._last_good is not None:
            # A refresh is in flight: answer with what we hold rather than queue behind Dynamic.
            self._source = "memory"
            return self._last_good
        async with self._lock:
            if (keyset := self._fresh.get(_SLOT)) is not None:  # refreshed while we waited
                self._source = "memory"
                return keyset
            keyset = await self._from_redis()
            if keyset is None and not self._backing_off():
                keyset = await self._fetch()
        if keyset is not None:
            return keyset
        if self._last_good is not None:
            self._stale = True
            self._source = "memory"
            return self._last_good
        raise JwksUnavailableError(internal=f"no JWKS held; last fetch error: {self._last_error}")

    async def _refetch_for(self, kid: str) -> _KeySet | None:
        async with self._lock:
            if self._last_good is not None and kid in self._last_good.keys:
                return self._last_good  # a concurrent refetch already brought it
            now = self._clock()
            if self._last_forced_at is not None and now - self._last_forced_at < self._refetch_cooldown_s:
                log.info("auth.jwks_refetch_suppressed", kid=kid)
                return None
            self._last_forced_at = now
            return await self._fetch()

    def _backing_off(self) -> bool:
        # After a failed fetch, serve stale (or fail fast) instead of hitting a down Dynamic on every request.
        return self._last_failure_at is not None and self._clock() - self._last_failure_at < self._failure_backoff_s

    def _remember(self, keyset: _KeySet, source: JwksSource) -> None:
        self._fresh[_SLOT] = keyset
        self._last_good = keyset
        self._stale = False
        self._source = source

    async def _from_redis(self) -> _KeySet | None:
        answered, raw = await self._redis.call(lambda r: r.get(self._redis_key), what="jwks.get")
        if not answered or raw is None:
            return None
        try:
            entry = json.loads(raw)
            keyset = _KeySet(parse_jwks(entry["jwks"]), entry["jwks"], float(entry["fetched_at"]))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("auth.jwks_redis_entry_invalid", error=repr(exc))
            return None
        if self._last_good is not None and keyset.fetched_at < self._last_good.fetched_at:
            return None  # older than what we already hold
        self._remember(keyset, "redis")
        return keyset

    async def _fetch(self) -> _KeySet | None:
        self._last_fetch_at = self._clock()
        started = time.perf_counter()
        try:
            response = await self._http.get(self.url, timeout=self._timeout, headers={"accept": "application/json"})
            response.raise_for_status()  # redirects included: they are not followed
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError(f"JWKS response is {len(response.content)} bytes")
            document = response.text
            keys = parse_jwks(document)
        except (httpx.HTTPError, ValueError) as exc:
            self._report_fetch("error", started)
            self._last_fetch_ok = False
            self._last_failure_at = self._clock()
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.warning("auth.jwks_fetch_failed", url=self.url, error=self._last_error, have_keys=bool(self._last_good))
            return None
        self._report_fetch("ok", started)
        keyset = _KeySet(keys, document, self._clock())
        self._last_fetch_ok = True
        self._last_failure_at = None
        self._last_error = None
        self._remember(keyset, "http")
        entry = json.dumps({"fetched_at": keyset.fetched_at, "jwks": document})
        ttl = max(1, int(self._ttl_s))
        await self._redis.call(lambda r: r.set(self._redis_key, entry, ex=ttl), what="jwks.set")
        log.info("auth.jwks_fetched", url=self.url, kids=sorted(keys))
        return keyset

    def _report_fetch(self, outcome: str, started: float) -> None:
        if self._on_fetch is not None:
            self._on_fetch("dynamic_jwks", outcome, time.perf_counter() - started)

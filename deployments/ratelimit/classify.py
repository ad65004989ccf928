"""Which policies one request pays, and as whom: `RateClassifier`, built from `RateLimitSettings`.

A request pays its caller's policy first (`public` when anonymous, else `user` or `service`:
`core.settings.CALLER_POLICIES`), then every route class whose patterns match its method and
path, in the order of `rate_limits.routes`. Each policy's `key` picks the subject its budget is
kept under (`subject_for`):

    key         user caller      service caller      anonymous caller
    ip          client IP        client IP           client IP
    user        user id          (not counted)       ip:<client IP>
    service     (not counted)    service id          ip:<client IP>
    principal   user:<id>        service:<id>        ip:<client IP>

A subject of the key's own kind is the bare id, as it was before route classes existed, so the
stored budgets of `public`, `user`, `service` and `analyze` keep their names; any other subject
is tagged with its kind, so a user id never shares a budget with an address or a service id of
the same spelling. The client IP is `client_ip` over `rate_limits.trusted_proxies`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.types import Scope

from core.settings import CALLER_POLICIES, RateLimitKey, RateLimitSettings, parse_route_pattern
from deployments.ratelimit.client_ip import client_ip, parse_networks
from deployments.ratelimit.middleware import RateKey

__all__ = ["Caller", "RouteClass", "RateClassifier", "compile_route_classes", "subject_for"]


class Caller(Protocol):
    """An authenticated principal as the classifier sees it (`deployments.auth.Principal`)."""

    @property
    def kind(self) -> str: ...

    @property
    def id(self) -> str: ...


def subject_for(key: RateLimitKey, caller: Caller | None, ip: Callable[[], str]) -> str | None:
    """Who a policy with `key` counts this caller as; None when it does not count them at all."""
    if key == "ip":
        return ip()
    if caller is None:
        return f"ip:{ip()}"
    if key == "principal":
        return f"{caller.kind}:{caller.id}"
    return caller.id if caller.kind == key else None


def _glob(path: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in path.split("*")))


@dataclass(frozen=True, slots=True)
class RouteClass:
    """A route-class policy and its patterns: (method or None for any, compiled path glob)."""

    name: str
    patterns: tuple[tuple[str | None, re.Pattern[str]], ...]

    def matches(self, method: str, path: str) -> bool:
        for wanted, glob in self.patterns:
            if wanted is None or wanted == method or (wanted == "GET" and method == "HEAD"):
                if glob.fullmatch(path):
                    return True
        return False


def compile_route_classes(routes: Mapping[str, Sequence[str]]) -> list[RouteClass]:
    """`rate_limits.routes` compiled, in order; classes without patterns are left out."""
    compiled = []
    for name, patterns in routes.items():
        parsed = [parse_route_pattern(text) for text in patterns]
        if parsed:
            compiled.append(RouteClass(name, tuple((p.method, _glob(p.path)) for p in parsed)))
    return compiled


class RateClassifier:
    """`classify(scope)` for `RateLimitMiddleware`: the caller's policy, then each matching route class.

    `principal(scope)` says who is calling (None: anonymous); paths in `exempt` are not limited.
    """

    def __init__(
        self,
        settings: RateLimitSettings,
        principal: Callable[[Scope], Caller | None],
        *,
        exempt: Collection[str] = frozenset(),
    ) -> None:
        self._principal = principal
        self._exempt = frozenset(exempt)
        self._trusted = parse_networks(settings.trusted_proxies)
        self._keys: dict[str, RateLimitKey] = {name: policy.key for name, policy in settings.policies.items()}
        self._classes = compile_route_classes(settings.routes)

    def route_classes(self, method: str, path: str) -> list[str]:
        """The route-class policies a `method path` request pays, in configuration order."""
        return [route_class.name for route_class in self._classes if route_class.matches(method, path)]

    def client_ip(self, scope: Scope) -> str:
        peer = scope.get("client")
        forwarded = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"), None)
        return client_ip(peer[0] if peer else "unknown", forwarded, self._trusted)

    def __call__(self, scope: Scope) -> list[RateKey] | None:
        path = scope["path"]
        if path in self._exempt:
            return None
        caller = self._principal(scope)
        address: list[str] = []

        def ip() -> str:  # worked out once, and only if some policy counts by address
            if not address:
                address.append(self.client_ip(scope))
            return address[0]

        own = CALLER_POLICIES["anonymous" if caller is None else caller.kind]  # type: ignore[index]
        keys = []
        for name in (own, *self.route_classes(scope.get("method", "GET"), path)):
            subject = subject_for(self._keys[name], caller, ip)
            if subject is not None:
                keys.append(RateKey(name, subject))
        return keys

"""The `rate_limits` section: named GCRA policies, who each one counts, and the route classes.

Every classified request pays the policy of its caller (`CALLER_POLICIES`: `public` for
anonymous callers, `user`, `service`) and then every route class whose patterns match it
(`routes`: class name -> patterns; the name is a policy of its own). A policy's `key` says
who its budget belongs to (`KEY_COUNTS`):

- `ip`: the client address (after `trusted_proxies`), whoever is calling;
- `user`: the user id; anonymous callers by client address; services are not counted;
- `service`: the service id; anonymous callers by client address; users are not counted;
- `principal`: whoever is calling: user id, service id, else client address.

A route pattern is `[METHOD ]PATH`: `POST /v1/analyze`, `/v1/cards/*`. `*` matches any run of
characters, `/` included (`/v1/cards/*` is a prefix match); without `*` the path matches
exactly; no method matches every method, and `GET` also matches `HEAD`. Re-exported by
`core.settings`, which is where callers import it from.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, NamedTuple, Self

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, field_validator
from pydantic import model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from core._settings_schema import suggest

__all__ = [
    "RateLimitKey", "RateLimitPolicy", "RateLimitSettings", "RoutePattern", "DEFAULT_POLICIES", "DEFAULT_ROUTES",
    "CALLER_POLICIES", "KEY_COUNTS", "HTTP_METHODS", "parse_route_pattern",
]

RateLimitKey = Literal["ip", "user", "service", "principal"]
CallerKind = Literal["anonymous", "user", "service"]

# The policy every request of a caller kind pays (`deployments.ratelimit.classify`).
CALLER_POLICIES: dict[CallerKind, str] = {"anonymous": "public", "user": "user", "service": "service"}
# Which callers a policy with this `key` counts; the others pass it uncounted.
KEY_COUNTS: dict[RateLimitKey, frozenset[CallerKind]] = {
    "ip": frozenset({"anonymous", "user", "service"}),
    "user": frozenset({"anonymous", "user"}),
    "service": frozenset({"anonymous", "service"}),
    "principal": frozenset({"anonymous", "user", "service"}),
}
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class RoutePattern(NamedTuple):
    """A parsed route pattern: `method` None matches any; `path` may hold `*` wildcards."""

    method: str | None
    path: str


def parse_route_pattern(text: str) -> RoutePattern:
    """`"POST /v1/analyze"` -> RoutePattern("POST", "/v1/analyze"); ValueError saying what is wrong."""
    parts = text.split()
    if not 1 <= len(parts) <= 2:
        raise ValueError("must be a path like '/v1/cards/*', optionally after a method: 'POST /v1/analyze'")
    method = parts[0].upper() if len(parts) == 2 else None
    path = parts[-1]
    if method is not None and method not in HTTP_METHODS:
        raise ValueError(f"unknown method {parts[0]!r} (expected one of {', '.join(HTTP_METHODS)})")
    if not path.startswith("/"):
        raise ValueError("path must start with '/'")
    if "?" in path or "#" in path:
        raise ValueError("path must not hold a query or fragment: only the path is matched")
    return RoutePattern(method, path)


def _route_pattern(value: str) -> str:
    method, path = parse_route_pattern(value)
    return f"{method} {path}" if method else path  # normalised: `post  /x` -> `POST /x`


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value))
    except ValueError as exc:
        # ipaddress's own message repeats the value, which the problem line already shows.
        reason = " (host bits set: use the network address)" if "host bits" in str(exc) else ""
        raise ValueError(f"is not an IP address or CIDR block{reason}") from None


ProxyNetwork = Annotated[str, AfterValidator(_network)]
RoutePatternText = Annotated[str, AfterValidator(_route_pattern)]


class RateLimitPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(gt=0, description="requests allowed per window")
    window_s: int = Field(gt=0, description="window length in seconds")
    burst: int = Field(0, ge=0, description="extra requests tolerated in a burst")
    key: RateLimitKey = Field(description="who the limit counts against: ip, user, service or principal")


DEFAULT_POLICIES: dict[str, RateLimitPolicy] = {
    "public": RateLimitPolicy(limit=60, window_s=60, burst=10, key="ip"),
    "user": RateLimitPolicy(limit=600, window_s=60, burst=50, key="user"),
    "service": RateLimitPolicy(limit=6000, window_s=60, key="service"),
    "analyze": RateLimitPolicy(limit=10, window_s=3600, key="user"),
}
DEFAULT_ROUTES: dict[str, list[str]] = {"analyze": ["POST /v1/analyze"]}


def _cross_problems(
    policy_names: Iterable[str], policy_keys: Mapping[str, Any], routes: Mapping[str, Any]
) -> list[InitErrorDetails]:
    """Problems between fields: a route class that is no policy or a caller's, a caller policy skipping its caller."""
    names = list(policy_names)
    callers_of = {name: caller for caller, name in CALLER_POLICIES.items()}
    found: list[InitErrorDetails] = []
    for name, patterns in routes.items():
        if name in callers_of:
            message = (f"{name!r} is the policy every {callers_of[name]} request pays already:"
                       " a route class needs a policy of its own")
        elif name not in names:
            others = [known for known in names if known not in callers_of]
            message = "a route class needs the policy of the same name in rate_limits.policies" + suggest(name, others)
        else:
            continue
        found.append(InitErrorDetails(
            type=PydanticCustomError("route_class", message), loc=("routes", name), input=patterns,
        ))
    for caller, name in CALLER_POLICIES.items():
        key = policy_keys.get(name)
        if key in KEY_COUNTS and caller not in KEY_COUNTS[key]:
            allowed = ", ".join(repr(k) for k, callers in KEY_COUNTS.items() if caller in callers)
            message = f"the {name!r} policy counts {caller} callers: its key must be one of {allowed}"
            found.append(InitErrorDetails(
                type=PydanticCustomError("policy_key", message), loc=("policies", name, "key"), input=key,
            ))
    return found


def _raw_names_and_keys(data: Mapping[str, Any]) -> tuple[list[str], dict[str, Any], dict[Any, Any]]:
    """Policy names, caller-policy keys and route classes from unvalidated input, defaults filled in."""
    raw = data.get("policies")
    raw = raw if isinstance(raw, Mapping) else {}
    names = [*DEFAULT_POLICIES, *(name for name in raw if name not in DEFAULT_POLICIES)]
    keys: dict[str, Any] = {}
    for name in CALLER_POLICIES.values():
        entry = raw.get(name)
        keys[name] = entry.get("key", DEFAULT_POLICIES[name].key) if isinstance(entry, Mapping) else None
    routes = data.get("routes")
    return names, keys, {**DEFAULT_ROUTES, **routes} if isinstance(routes, Mapping) else dict(DEFAULT_ROUTES)


def _details(error: Any) -> InitErrorDetails:
    return InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"], ctx=error.get("ctx", {}))


class RateLimitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trusted_proxies: list[ProxyNetwork] = Field(
        default_factory=list, description="proxies whose X-Forwarded-For is believed (IPs or CIDRs)"
    )
    policies: dict[str, RateLimitPolicy] = Field(
        default_factory=lambda: dict(DEFAULT_POLICIES),
        description="policy name -> limit; public, user and service are the callers' own, the rest route classes",
    )
    routes: dict[str, list[RoutePatternText]] = Field(
        default_factory=lambda: {name: list(patterns) for name, patterns in DEFAULT_ROUTES.items()},
        description="route class (a policy name) -> request patterns `[METHOD ]/path` (`*` matches anything) "
                    "whose requests also pay that policy",
    )

    @field_validator("policies", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        # A partial entry (`analyze: {limit: 20}`) refines the default policy of that name.
        if not isinstance(value, Mapping):
            return value
        merged: dict[Any, Any] = dict(DEFAULT_POLICIES)
        for name, policy in value.items():
            default = DEFAULT_POLICIES.get(name)
            merged[name] = {**default.model_dump(), **policy} if default and isinstance(policy, Mapping) else policy
        return merged

    @field_validator("routes", mode="before")
    @classmethod
    def _routes_over_defaults(cls, value: Any) -> Any:
        # Classes not named keep their default patterns; `analyze: []` switches one off.
        return {**DEFAULT_ROUTES, **value} if isinstance(value, Mapping) else value

    @model_validator(mode="wrap")
    @classmethod
    def _consistent(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # Checked here rather than in an "after" validator so that these problems are reported
        # together with any bad value elsewhere in the section, not only once the rest is fixed.
        try:
            settings = handler(data)
        except pydantic.ValidationError as exc:
            if not isinstance(data, Mapping):
                raise
            found = [_details(error) for error in exc.errors(include_url=False)]
            found += _cross_problems(*_raw_names_and_keys(data))
            raise pydantic.ValidationError.from_exception_data(cls.__name__, found) from None
        keys = {name: policy.key for name, policy in settings.policies.items()}
        if found := _cross_problems(settings.policies, keys, settings.routes):
            raise pydantic.ValidationError.from_exception_data(cls.__name__, found)
        return settings

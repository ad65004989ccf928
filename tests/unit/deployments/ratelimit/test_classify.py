"""deployments.ratelimit.classify: which policies a request pays (caller + route classes) and as whom (`key`)."""

from __future__ import annotations

from typing import Any

import pytest

from core.settings import RateLimitSettings, load_settings
from deployments.auth import Principal
from deployments.compose import RATE_LIMIT_EXEMPT, rate_classifier
from deployments.middleware import AUTH_SCOPE_KEY, AuthOutcome
from deployments.ratelimit import RateClassifier, RateKey, compile_route_classes, subject_for

ALICE = Principal("user", "alice")
INGEST = Principal("service", "ingest")
CARDS = {"limit": 60, "window_s": 60, "burst": 10, "key": "user"}


def scope(method: str, path: str, *, peer: str = "203.0.113.7", xff: str | None = None, who: Any = None) -> dict:
    headers = [(b"x-forwarded-for", xff.encode())] if xff else []
    found: dict[str, Any] = {"type": "http", "method": method, "path": path, "client": (peer, 5000), "headers": headers}
    if who is not None:
        found[AUTH_SCOPE_KEY] = AuthOutcome(principal=who)
    return found


def classifier(**rate_limits: Any) -> RateClassifier:
    settings = load_settings({}, overrides={"rate_limits": rate_limits}).rate_limits
    return rate_classifier(settings)


# --- subject_for: the table in the module docstring ----------------------------------------------


@pytest.mark.parametrize(
    ("key", "caller", "expected"),
    [
        ("ip", ALICE, "198.51.100.9"),
        ("ip", INGEST, "198.51.100.9"),
        ("ip", None, "198.51.100.9"),
        ("user", ALICE, "alice"),
        ("user", INGEST, None),
        ("user", None, "ip:198.51.100.9"),
        ("service", ALICE, None),
        ("service", INGEST, "ingest"),
        ("service", None, "ip:198.51.100.9"),
        ("principal", ALICE, "user:alice"),
        ("principal", INGEST, "service:ingest"),
        ("principal", None, "ip:198.51.100.9"),
    ],
)
def test_subject_for_each_key_and_caller(key: Any, caller: Principal | None, expected: str | None) -> None:
    assert subject_for(key, caller, lambda: "198.51.100.9") == expected


def test_the_address_is_only_worked_out_when_a_key_needs_it() -> None:
    def no_ip() -> str:
        raise AssertionError("asked for the client address")

    assert subject_for("user", ALICE, no_ip) == "alice"
    assert subject_for("principal", INGEST, no_ip) == "service:ingest"


# --- route patterns ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "method", "path", "matches"),
    [
        ("/v1/cards/*", "GET", "/v1/cards/moment/s2e_1.png", True),  # `*` crosses `/`: a prefix
        ("/v1/cards/*", "POST", "/v1/cards/x", True),  # no method: any method
        ("/v1/cards/*", "GET", "/v1/cards", False),
        ("/v1/cards/*", "GET", "/v1/cardsx/1", False),
        ("/v1/wallets/*/summary", "GET", "/v1/wallets/W1/summary", True),
        ("/v1/wallets/*/summary", "GET", "/v1/wallets/W1/summary/x", False),
        ("POST /v1/analyze", "POST", "/v1/analyze", True),
        ("POST /v1/analyze", "GET", "/v1/analyze", False),
        ("POST /v1/analyze", "POST", "/v1/analyze/01J", False),  # no `*`: exactly that path
        ("GET /v1/prices", "HEAD", "/v1/prices", True),  # HEAD is a GET without the body
        ("HEAD /v1/prices", "GET", "/v1/prices", False),
        ("/v1/a.b", "GET", "/v1/aXb", False),  # only `*` is special
        ("get /v1/prices", "GET", "/v1/prices", True),
    ],
)
def test_route_patterns(pattern: str, method: str, path: str, matches: bool) -> None:
    [route_class] = compile_route_classes({"c": [pattern]})

    assert route_class.matches(method, path) is matches


def test_classes_without_patterns_are_left_out() -> None:
    assert [c.name for c in compile_route_classes({"a": [], "b": ["/x"]})] == ["b"]


# --- the classifier over default settings: exactly the keys of before, plus `analyze` ------------


def test_defaults_charge_the_callers_policy_by_its_own_id() -> None:
    classify = classifier()

    assert classify(scope("GET", "/v1/moments")) == [RateKey("public", "203.0.113.7")]
    assert classify(scope("GET", "/v1/moments", who=ALICE)) == [RateKey("user", "alice")]
    assert classify(scope("GET", "/v1/moments", who=INGEST)) == [RateKey("service", "ingest")]


def test_exempt_paths_are_not_limited() -> None:
    classify = classifier()

    for path in RATE_LIMIT_EXEMPT:
        assert classify(scope("GET", path, who=ALICE)) is None


def test_the_default_analyze_class_counts_users_by_id_and_never_services() -> None:
    classify = classifier()

    assert classify(scope("POST", "/v1/analyze", who=ALICE)) == [RateKey("user", "alice"), RateKey("analyze", "alice")]
    assert classify(scope("POST", "/v1/analyze", who=INGEST)) == [RateKey("service", "ingest")]
    assert classify(scope("POST", "/v1/analyze")) == [
        RateKey("public", "203.0.113.7"), RateKey("analyze", "ip:203.0.113.7"),
    ]
    assert classify(scope("GET", "/v1/analyze/01J", who=ALICE)) == [RateKey("user", "alice")]


def test_switching_the_analyze_class_off() -> None:
    classify = classifier(routes={"analyze": []})

    assert classify(scope("POST", "/v1/analyze", who=ALICE)) == [RateKey("user", "alice")]


def test_an_operator_route_class_from_settings() -> None:
    classify = classifier(policies={"cards": CARDS}, routes={"cards": ["GET /v1/cards/*"]})

    card = "/v1/cards/moment/s2e_1.png"
    assert classify(scope("GET", card, who=ALICE)) == [RateKey("user", "alice"), RateKey("cards", "alice")]
    assert classify(scope("HEAD", card, who=ALICE)) == [RateKey("user", "alice"), RateKey("cards", "alice")]
    assert classify(scope("GET", "/v1/moments", who=ALICE)) == [RateKey("user", "alice")]
    assert classify(scope("POST", "/v1/analyze", who=ALICE))[1:] == [RateKey("analyze", "alice")]  # default kept


def test_every_matching_class_is_charged_in_configuration_order() -> None:
    classify = classifier(
        policies={
            "cards": CARDS,
            "heavy": {"limit": 5, "window_s": 60, "key": "principal"},
            "per_ip": {"limit": 100, "window_s": 60, "key": "ip"},
        },
        routes={"per_ip": ["/v1/*"], "heavy": ["/v1/cards/*", "POST /v1/analyze"], "cards": ["/v1/cards/*"]},
    )

    assert classify(scope("GET", "/v1/cards/x", who=INGEST)) == [
        RateKey("service", "ingest"), RateKey("per_ip", "203.0.113.7"), RateKey("heavy", "service:ingest"),
    ]  # `cards` counts users (and anonymous callers), not services
    assert [k.policy_name for k in classify(scope("POST", "/v1/analyze", who=ALICE))] == [
        "user", "analyze", "per_ip", "heavy",
    ]


def test_caller_policies_honour_their_key() -> None:
    classify = classifier(policies={"user": {"key": "ip"}, "service": {"key": "principal"}})

    assert classify(scope("GET", "/v1/moments", who=ALICE)) == [RateKey("user", "203.0.113.7")]
    assert classify(scope("GET", "/v1/moments", who=INGEST)) == [RateKey("service", "service:ingest")]


def test_addresses_come_through_trusted_proxies_only() -> None:
    settings = load_settings({}, overrides={"rate_limits": {
        "trusted_proxies": ["10.0.0.0/8"], "policies": {"cards": {**CARDS, "key": "ip"}}, "routes": {"cards": ["/c"]},
    }}).rate_limits
    classify = rate_classifier(settings)

    via_proxy = classify(scope("GET", "/c", peer="10.1.1.1", xff="198.51.100.4, 10.2.2.2", who=ALICE))
    direct = classify(scope("GET", "/c", peer="192.0.2.1", xff="198.51.100.4", who=ALICE))

    assert via_proxy == [RateKey("user", "alice"), RateKey("cards", "198.51.100.4")]
    assert direct == [RateKey("user", "alice"), RateKey("cards", "192.0.2.1")]


def test_a_bare_classifier_takes_any_principal_lookup() -> None:
    classify = RateClassifier(RateLimitSettings(), lambda s: s.get("who"), exempt={"/skip"})

    assert classify({"type": "http", "method": "POST", "path": "/v1/analyze", "who": ALICE, "headers": []}) == [
        RateKey("user", "alice"), RateKey("analyze", "alice"),
    ]
    assert classify({"type": "http", "method": "GET", "path": "/skip", "headers": []}) is None

"""core.settings `rate_limits`: route classes and policy keys, validated at load, every problem reported at once."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import DEFAULT_ROUTES, RateLimitPolicy, RateLimitSettings, Settings, load_settings, parse_route_pattern
from deployments.commands import config

CARDS_YAML = """
rate_limits:
  policies:
    cards: {limit: 60, window_s: 60, burst: 10, key: user}
  routes:
    cards: ["get /v1/cards/*", "/v1/prices"]
"""


def problems(files: list[Path] | None = None, environ: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ or {}, files or [])
    return {problem.location: problem.message for problem in caught.value.problems}


def yaml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oof.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_route_classes_and_keys() -> None:
    limits = Settings().rate_limits

    assert limits.routes == DEFAULT_ROUTES == {"analyze": ["POST /v1/analyze"]}
    assert limits.policies["analyze"].key == "user"


def test_a_route_class_from_yaml_keeps_the_defaults_and_is_normalised(tmp_path: Path) -> None:
    limits = load_settings({}, [yaml_file(tmp_path, CARDS_YAML)]).rate_limits

    assert limits.routes == {"analyze": ["POST /v1/analyze"], "cards": ["GET /v1/cards/*", "/v1/prices"]}
    assert limits.policies["cards"] == RateLimitPolicy(limit=60, window_s=60, burst=10, key="user")


def test_a_route_class_from_the_environment() -> None:
    limits = load_settings({
        "OOF_RATE_LIMITS__POLICIES__CARDS": '{"limit": 5, "window_s": 60, "key": "principal"}',
        "OOF_RATE_LIMITS__ROUTES__CARDS": "GET /v1/cards/*,HEAD /v1/cards/*",
        "OOF_RATE_LIMITS__ROUTES__ANALYZE": "[]",
    }).rate_limits

    assert limits.routes == {"analyze": [], "cards": ["GET /v1/cards/*", "HEAD /v1/cards/*"]}
    assert limits.policies["cards"].key == "principal"


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("", "must be a path like '/v1/cards/*'"),
        ("GET /a /b", "must be a path like"),
        ("FETCH /v1/x", "unknown method 'FETCH' (expected one of GET, HEAD, POST"),
        ("v1/cards/*", "path must start with '/'"),
        ("GET v1/cards", "path must start with '/'"),
        ("/v1/prices?mints=a", "must not hold a query"),
    ],
)
def test_bad_patterns(pattern: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_route_pattern(pattern)
    assert fragment in str(caught.value)

    found = problems(environ={"OOF_RATE_LIMITS__ROUTES__ANALYZE": f'["POST /v1/analyze", "{pattern}"]'})
    assert fragment in found["rate_limits.routes.analyze[1]"]


def test_every_rate_limit_problem_is_reported_together(tmp_path: Path) -> None:
    bad = yaml_file(tmp_path, """
database: {pool_max: lots}
rate_limits:
  trusted_proxies: [10.0.0.300]
  policies:
    cards: {limit: 0, window_s: 60, key: user}
    user: {key: service}
    bulk: {limit: 1, window_s: 1, key: everyone}
  routes:
    cards: ["/v1/cards/*", "GRAB /v1/cards/*", "cards"]
    cardz: ["/v1/cards/*"]
    service: ["/v1/admin/*"]
""")

    found = problems([bad])

    assert set(found) == {
        "database.pool_max",
        "rate_limits.trusted_proxies[0]",
        "rate_limits.policies.cards.limit",
        "rate_limits.policies.user.key",
        "rate_limits.policies.bulk.key",
        "rate_limits.routes.cards[1]",
        "rate_limits.routes.cards[2]",
        "rate_limits.routes.cardz",
        "rate_limits.routes.service",
    }
    assert "unknown method 'GRAB'" in found["rate_limits.routes.cards[1]"]
    assert found["rate_limits.routes.cardz"] == (
        "a route class needs the policy of the same name in rate_limits.policies (did you mean 'cards'?)"
    )
    assert "'service' is the policy every service request pays already" in found["rate_limits.routes.service"]
    assert found["rate_limits.policies.user.key"] == (
        "the 'user' policy counts user callers: its key must be one of 'ip', 'user', 'principal' (got 'service')"
    )
    assert "'ip', 'user', 'service' or 'principal'" in found["rate_limits.policies.bulk.key"]


def test_cross_checks_alone_are_problems_too() -> None:
    found = problems(environ={
        "OOF_RATE_LIMITS__ROUTES__CARDS": "/v1/cards/*",
        "OOF_RATE_LIMITS__POLICIES__SERVICE__KEY": "user",
    })

    assert set(found) == {"rate_limits.routes.cards", "rate_limits.policies.service.key"}
    assert found["rate_limits.policies.service.key"].startswith("the 'service' policy counts service callers")


def test_the_model_checks_route_classes_when_built_directly() -> None:
    with pytest.raises(ValueError, match="route class needs the policy"):
        RateLimitSettings(routes={"nope": ["/x"]})

    built = RateLimitSettings(
        policies={"cards": RateLimitPolicy(limit=1, window_s=1, key="user")}, routes={"cards": ["/v1/cards/*"]}
    )
    assert built.routes == {"analyze": ["POST /v1/analyze"], "cards": ["/v1/cards/*"]}


def test_oof_config_check_exits_2_listing_each_route_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = yaml_file(tmp_path, 'rate_limits:\n  routes:\n    cards: ["v1/cards"]\n    analyze: ["YANK /v1/analyze"]\n')
    parser = argparse.ArgumentParser(prog="oof config")
    config.add_parser(parser)
    args = parser.parse_args(["check", "--config", str(bad)])

    code = int(args.handler(args, {}))

    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[0] == "configuration has 3 problem(s):"
    assert "rate_limits.routes.cards[0]: path must start with '/'" in err
    assert "rate_limits.routes.cards: a route class needs the policy" in err
    assert "rate_limits.routes.analyze[0]: unknown method 'YANK'" in err

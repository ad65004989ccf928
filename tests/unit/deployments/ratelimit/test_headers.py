"""deployments.ratelimit.headers: draft-08+ structured fields, parsed back."""

from __future__ import annotations

import re

import pytest

from deployments.ratelimit.gcra import Decision, Rate, decide
from deployments.ratelimit.headers import rate_limit_headers, sf_string

# One sf-list member: an sf-string item with integer parameters (all these fields use).
_ITEM = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"((?:;[a-z*][a-z0-9_.*-]*=-?[0-9]{1,15})*)')


def parse_item(field: str) -> tuple[str, dict[str, int]]:
    match = _ITEM.fullmatch(field)
    assert match, f"not an sf-string item with integer params: {field!r}"
    name = re.sub(r"\\(.)", r"\1", match.group(1))
    params = dict(param.split("=") for param in match.group(2).split(";")[1:])
    return name, {key: int(value) for key, value in params.items()}


def decision(**changes: object) -> Decision:
    base = {"allowed": True, "remaining": 42, "reset_after_s": 29.2, "retry_after_s": 0.0,
            "limit": 600, "window_s": 60, "policy_name": "user"}
    return Decision(**{**base, **changes})  # type: ignore[arg-type]


def test_allowed_response_carries_policy_and_state() -> None:
    headers = rate_limit_headers(decision())

    assert headers == {"RateLimit-Policy": '"user";q=600;w=60', "RateLimit": '"user";r=42;t=30'}
    assert parse_item(headers["RateLimit-Policy"]) == ("user", {"q": 600, "w": 60})
    assert parse_item(headers["RateLimit"]) == ("user", {"r": 42, "t": 30})


def test_denied_response_adds_retry_after_matching_t() -> None:
    rate = Rate(limit=5, window_s=60)
    tat = None
    for _ in range(6):
        denied, tat = decide(rate, "public", tat, 0.0)

    headers = rate_limit_headers(denied)

    assert headers["Retry-After"] == "12"
    assert parse_item(headers["RateLimit"]) == ("public", {"r": 0, "t": 12})
    assert parse_item(headers["RateLimit-Policy"]) == ("public", {"q": 5, "w": 60})


@pytest.mark.parametrize(("retry_after_s", "expected"), [(1e-6, "1"), (0.0, "1"), (11.000001, "12"), (12.0, "12")])
def test_retry_after_rounds_up_to_at_least_one(retry_after_s: float, expected: str) -> None:
    headers = rate_limit_headers(
        decision(allowed=False, remaining=0, retry_after_s=retry_after_s, reset_after_s=retry_after_s)
    )

    assert headers["Retry-After"] == expected


def test_policy_names_are_escaped_and_must_be_ascii() -> None:
    assert sf_string('a"b\\c') == '"a\\"b\\\\c"'
    assert parse_item(rate_limit_headers(decision(policy_name='we"ird'))["RateLimit"])[0] == 'we"ird'
    with pytest.raises(ValueError):
        sf_string("ünïcode")
    with pytest.raises(ValueError):
        sf_string("line\nbreak")

"""RateLimit response fields in the structured-field form of draft-ietf-httpapi-ratelimit-headers-08+.

    RateLimit-Policy: "user";q=600;w=60
    RateLimit: "user";r=42;t=30
    Retry-After: 12                      (429 only)

`q` is the sustained `limit` per `w` seconds; `r` counts what may be sent right now, so it can
exceed `q` by up to the policy's `burst`. `t` is the seconds until more quota is available (the
draft-10 wording), so on a 429 it equals `Retry-After`. Seconds are rounded up: rounding down
would invite a retry that is denied again.
"""

from __future__ import annotations

import math

from deployments.ratelimit.gcra import Decision

__all__ = ["POLICY_HEADER", "RATELIMIT_HEADER", "RETRY_AFTER_HEADER", "sf_string", "rate_limit_headers"]

POLICY_HEADER = "RateLimit-Policy"
RATELIMIT_HEADER = "RateLimit"
RETRY_AFTER_HEADER = "Retry-After"


def sf_string(value: str) -> str:
    """An RFC 9651 sf-string: printable ASCII, with `"` and `\\` escaped."""
    if not all(0x20 <= ord(char) <= 0x7E for char in value):
        raise ValueError(f"policy name {value!r} must be printable ASCII to fit a structured field")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """The RateLimit fields for `decision`, plus `Retry-After` (whole seconds, >= 1) when denied."""
    name = sf_string(decision.policy_name)
    headers = {
        POLICY_HEADER: f"{name};q={decision.limit};w={decision.window_s}",
        RATELIMIT_HEADER: f"{name};r={decision.remaining};t={math.ceil(decision.reset_after_s)}",
    }
    if not decision.allowed:
        headers[RETRY_AFTER_HEADER] = str(max(1, math.ceil(decision.retry_after_s)))
    return headers

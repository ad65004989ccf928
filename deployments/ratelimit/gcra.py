"""GCRA (generic cell rate algorithm) as pure arithmetic: no clock, no I/O.

A policy `limit` per `window_s` with `burst` becomes a `Rate`:

- emission interval `E = window_s / limit`: the steady spacing between requests, so `limit`
  requests per `window_s` are sustained indefinitely;
- capacity `C = limit + burst`: how many requests a rested client may send *at once*;
- tolerance `τ = C * E`: how far the theoretical arrival time (TAT) may run ahead of now.

A request at `now` is allowed iff `max(TAT, now) + E - now <= τ`, and then TAT becomes
`max(TAT, now) + E`. So with `limit=5, window_s=60, burst=0` (E = 12 s), five requests pass at
t=0, the sixth is denied with 12 s to wait, and one more passes at t=12. With `burst=2` seven
pass at once. (Textbook GCRA writes τ for the slack beyond one cell, i.e. `(C - 1) * E`; ours
counts the whole bucket so that the boundary reads as `TAT - now <= τ`.)

State is the TAT alone, an integer number of microseconds: the Redis Lua script does the same
integer math in doubles (exact below 2**53), so both stores agree to the microsecond. `E` is
rounded up to a whole microsecond, which can only make a policy stricter, by under 1 µs/request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["MICROS", "Rate", "Decision", "Outcome", "to_micros", "step", "describe", "decide"]

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Rate:
    """`limit` requests per `window_s` sustained, plus `burst` extra that may arrive at once."""

    limit: int
    window_s: int
    burst: int = 0

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.window_s <= 0 or self.burst < 0:
            raise ValueError(f"invalid rate {self!r}: limit and window_s must be > 0, burst >= 0")

    @property
    def emission_us(self) -> int:
        # Ceiling division: never let more than `limit` through per window.
        return -(-self.window_s * MICROS // self.limit)

    @property
    def capacity(self) -> int:
        return self.limit + self.burst

    @property
    def tolerance_us(self) -> int:
        return self.capacity * self.emission_us


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request, in the terms the RateLimit headers need.

    `remaining`: requests that would pass right now, after this one (0 when denied).
    `reset_after_s`: seconds until more quota is available, the draft's `t` (draft-10 wording);
    when denied it equals `retry_after_s`.
    `retry_after_s`: 0 when allowed, else seconds until one request would pass.
    """

    allowed: bool
    remaining: int
    reset_after_s: float
    retry_after_s: float
    limit: int
    window_s: int
    policy_name: str


class Outcome(NamedTuple):
    """A decision and the TAT to keep (unchanged when denied)."""

    decision: Decision
    tat_us: int


def to_micros(seconds: float) -> int:
    return round(seconds * MICROS)


def step(rate: Rate, tat_us: int | None, now_us: int) -> tuple[bool, int]:
    """Allow or deny one request; returns (allowed, TAT after). The Lua script mirrors this."""
    start = now_us if tat_us is None or tat_us < now_us else tat_us
    new_tat = start + rate.emission_us
    if new_tat - now_us > rate.tolerance_us:
        return False, start
    return True, new_tat


def describe(rate: Rate, policy_name: str, allowed: bool, tat_us: int, now_us: int) -> Decision:
    """Turn the TAT left after a request into remaining / reset / retry numbers."""
    debt = max(tat_us - now_us, 0)  # how far the client is ahead of its steady rate
    emission, tolerance = rate.emission_us, rate.tolerance_us
    # Clamped at 0: a TAT can sit beyond τ if the policy was tightened since it was written.
    remaining = max((tolerance - debt) // emission, 0)
    # One more unit frees up once the debt drops to τ - (remaining + 1) * E.
    next_unit_us = debt + (remaining + 1) * emission - tolerance
    return Decision(
        allowed=allowed,
        remaining=remaining,
        reset_after_s=next_unit_us / MICROS,
        retry_after_s=0.0 if allowed else next_unit_us / MICROS,
        limit=rate.limit,
        window_s=rate.window_s,
        policy_name=policy_name,
    )


def decide(rate: Rate, policy_name: str, tat_us: int | None, now: float) -> Outcome:
    """One request at `now` (seconds, any fixed epoch) against the stored TAT (None if none)."""
    now_us = to_micros(now)
    allowed, new_tat = step(rate, tat_us, now_us)
    return Outcome(describe(rate, policy_name, allowed, new_tat, now_us), new_tat)

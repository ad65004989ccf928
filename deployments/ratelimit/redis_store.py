"""GCRA in Redis: one Lua script per request, so check-and-update is atomic across replicas.

The script reads the clock with `TIME` on the server, so replicas with skewed clocks still
agree, and keeps the TAT (integer microseconds) at `{prefix}:{policy}:{subject}` with a PX
expiry at the TAT, after which a missing key means the same as the stored one. The arithmetic
mirrors `gcra.step`; `gcra.describe` turns its answer into a `Decision` on this side.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from deployments.ratelimit.gcra import Decision, Rate, describe

__all__ = ["RedisStore", "GCRA_LUA", "DEFAULT_PREFIX"]

DEFAULT_PREFIX = "oof:rl"

# KEYS[1] TAT key; ARGV[1] emission interval µs; ARGV[2] tolerance µs.
# Returns {allowed 0/1, TAT after µs, server now µs}. Lua numbers are doubles: exact to 2**53,
# and now in µs is ~2**51, so integers survive; "%.0f" because tostring would use %.14g.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then
  tat = math.max(tonumber(stored), now)
end
local new_tat = tat + emission
if new_tat - now > tolerance then
  return {0, tat, now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, new_tat, now}
"""


class RedisStore:
    """Shared GCRA state in Redis; errors (connection, timeout) propagate to the caller."""

    def __init__(self, redis: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._prefix = prefix
        # register_script sends EVALSHA and loads the script on NOSCRIPT (e.g. after a restart).
        self._script: Any = redis.register_script(GCRA_LUA)

    def key(self, policy_name: str, subject: str) -> str:
        return f"{self._prefix}:{policy_name}:{subject}"

    async def check(self, policy_name: str, rate: Rate, subject: str) -> Decision:
        allowed, tat_us, now_us = await self._script(
            keys=[self.key(policy_name, subject)], args=[rate.emission_us, rate.tolerance_us]
        )
        return describe(rate, policy_name, bool(allowed), int(tat_us), int(now_us))

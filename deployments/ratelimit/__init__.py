"""Rate limiting: GCRA policies in Redis with an in-process fallback, RateLimit headers, client IPs."""

from deployments.ratelimit.client_ip import IPNetwork, client_ip, parse_networks
from deployments.ratelimit.gcra import Decision, Rate, decide
from deployments.ratelimit.headers import rate_limit_headers
from deployments.ratelimit.limiter import Backend, RateLimiter
from deployments.ratelimit.memory_store import MemoryStore
from deployments.ratelimit.middleware import Classify, RateKey, RateLimitMiddleware
from deployments.ratelimit.redis_store import RedisStore

__all__ = [
    "Backend",
    "Classify",
    "Decision",
    "IPNetwork",
    "MemoryStore",
    "Rate",
    "RateKey",
    "RateLimitMiddleware",
    "RateLimiter",
    "RedisStore",
    "client_ip",
    "decide",
    "parse_networks",
    "rate_limit_headers",
]

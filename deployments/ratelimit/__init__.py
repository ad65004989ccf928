"""Rate limiting: GCRA policies in Redis with an in-process fallback, RateLimit headers, client IPs, route classes."""

from deployments.ratelimit.classify import Caller, RateClassifier, RouteClass, compile_route_classes, subject_for
from deployments.ratelimit.client_ip import IPNetwork, client_ip, parse_networks
from deployments.ratelimit.gcra import Decision, Rate, decide
from deployments.ratelimit.headers import rate_limit_headers
from deployments.ratelimit.limiter import Backend, RateLimiter
from deployments.ratelimit.memory_store import MemoryStore
from deployments.ratelimit.middleware import Classify, RateKey, RateLimitMiddleware
from deployments.ratelimit.redis_store import RedisStore

__all__ = [
    "Backend",
    "Caller",
    "Classify",
    "Decision",
    "IPNetwork",
    "MemoryStore",
    "Rate",
    "RateClassifier",
    "RateKey",
    "RateLimitMiddleware",
    "RateLimiter",
    "RedisStore",
    "RouteClass",
    "client_ip",
    "compile_route_classes",
    "decide",
    "parse_networks",
    "rate_limit_headers",
    "subject_for",
]

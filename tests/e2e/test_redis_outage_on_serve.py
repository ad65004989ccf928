"""Redis stopped mid-run, over the real Serve HTTP port: the API degrades, keeps answering, and recovers.

The API is deployed once more as its own Serve application (own name and route prefix, on the
session's Serve instance and HTTP port, one replica, its own database) whose `REDIS_URL` is a
`TcpProxy` in front of the real Redis: cutting the proxy is what a stopped Redis looks like to
the replica (connections closed, new ones refused). Its Solana RPC is a local node answering
`getHealth`, so before the cut every check is ok and the aggregate moves only because of Redis.
The shared `api_server` and its Redis are never touched.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from ray import serve

from deployments import serve_app
from tests.e2e.conftest import REDIS_URL, ApiServer, ray_keeps_its_hands_off_logging, unique_user
from streams.localnode import LocalRpcServer
from tests.tcp_proxy import TcpProxy

APP, PREFIX = "oof-api-redis-outage", "/redis-outage"


@asynccontextmanager
async def _api_behind(
    proxy: TcpProxy, api_server: ApiServer, dsn: str, rpc_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The API as app `APP` under `PREFIX`, Redis through `proxy`: a client of the Serve port; deleted after."""
    env = {**api_server.env, "DATABASE_URL": dsn, "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
           "OOF_SOLANA__RPC_HTTP_URL": rpc_url, "OOF_ANALYZE__ENABLED": "false",  # no analyze runner here
           # Under HAProxy a deleted replica stays reachable this long (default 30 s) before it stops.
           "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0.5"}
    overrides = {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1, "runtime_env": {"env_vars": env}}}
    url = urlsplit(api_server.base_url)
    try:
        with ray_keeps_its_hands_off_logging():  # in a thread: the proxy and the RPC node live on this loop
            await asyncio.to_thread(serve_app.run, serve_app.load_serve_config(), http_host=url.hostname,
                                    http_port=url.port, overrides=overrides, name=APP, route_prefix=PREFIX)
        async with httpx.AsyncClient(base_url=api_server.base_url, trust_env=False, timeout=10) as http:
            yield http
    finally:
        await asyncio.to_thread(serve.delete, APP)


async def _detailed(api_server: ApiServer, http: httpx.AsyncClient) -> dict[str, Any]:
    path, headers = api_server.service_request("GET", f"{PREFIX}/health/detailed")
    response = await http.get(path, headers=headers)
    assert response.status_code == 200, response.text  # HMAC nonces fall back to memory too
    return response.json()


async def _remaining(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """One user request; it is answered, with RateLimit fields: the `r` (requests left) they report."""
    response = await http.get(f"{PREFIX}/v1/moments", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["ratelimit-policy"].startswith('"user";')
    match = re.fullmatch(r'"user";r=(\d+);t=\d+', response.headers["ratelimit"])
    assert match, response.headers["ratelimit"]
    return int(match[1])


async def test_a_stopped_redis_degrades_health_falls_back_to_memory_and_recovers(
    api_server: ApiServer, database_factory: Any
) -> None:
    dsn, host_port = await database_factory(migrated=True), urlsplit(REDIS_URL)
    proxy = TcpProxy(host_port.hostname or "127.0.0.1", host_port.port or 6379)
    await proxy.start()
    headers = api_server.user_headers(unique_user("e2e-redis-outage"))
    try:
        async with LocalRpcServer() as node, _api_behind(proxy, api_server, dsn, node.http_url) as http:
            before = await _detailed(api_server, http)
            first, second = await _remaining(http, headers), await _remaining(http, headers)

            await proxy.stop()  # Redis "stops": the replica's connections drop, reconnects are refused
            during_first = await _remaining(http, headers)  # still answered, now by process memory
            during = await _detailed(api_server, http)
            ready = await http.get(f"{PREFIX}/health/ready")

            await proxy.start()  # same port: Redis is back
            deadline, after = time.monotonic() + 20, during
            # The limiter retries Redis 5 s after its last failure (cooldown): poll, no fixed sleep.
            while after["status"] != "ok" or after["checks"]["redis"]["detail"]["rate_limiter_backend"] != "redis":
                assert time.monotonic() < deadline, after
                await asyncio.sleep(0.25)
                after = await _detailed(api_server, http)
            after_remaining = await _remaining(http, headers)
    finally:
        await proxy.stop()

    assert before["status"] == "ok", before  # every check ok: what follows is Redis alone
    assert before["checks"]["redis"]["detail"]["rate_limiter_backend"] == "redis"
    assert second == first - 1  # one budget in Redis

    redis = during["checks"]["redis"]
    assert during["status"] == "degraded", during  # degraded, not down: Redis is not critical
    assert redis["status"] == "down" and redis["critical"] is False
    assert (redis["detail"]["rate_limiter_backend"], redis["detail"]["rate_limiter"]) == ("memory", "memory (fallback)")
    assert {name for name, check in during["checks"].items() if check["status"] not in ("ok", "disabled")} == {"redis"}
    assert during_first == first  # a fresh budget: the replica's memory, not Redis, counted it
    assert ready.status_code == 200 and ready.json()["status"] == "ok"

    assert after["checks"]["redis"]["status"] == "ok"
    assert after_remaining == second - 1  # back on Redis, whose budget kept the two requests made before the cut

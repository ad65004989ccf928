"""`oof bench api`: req/s and latency of the HTTP API per data plane, against plain uvicorn in the same run.

Three servers of the *same* app (`build_app` over `build_deps`, same settings), one at a time,
each in a child process so the data plane is chosen before Ray starts:

- `uvicorn` — no Ray: the baseline;
- `default` — Ray Serve with its Python HTTP proxy;
- `fast` — Ray Serve with `RAY_SERVE_THROUGHPUT_OPTIMIZED=1` + `RAY_SERVE_ENABLE_HA_PROXY=1`
  (bundled HAProxy, direct ingress), as configs/serve.yaml ships.

Serve runs one replica (`--replicas`), options otherwise from configs/serve.yaml. For each,
`--concurrency` keep-alive connections hammer `GET /health` and then `GET /v1/moments?limit=20`
(a service caller, HMAC-signed per request) for `--seconds` after a one-second warm-up, from
a minimal asyncio HTTP/1.1 client in this process (httpx would be the bottleneck). Reported:
req/s, p50/p99 latency, non-200 answers, and req/s as a ratio of uvicorn's. The load
generator shares the machine's cores with the server, equally for every mode.

`--seed N` first upserts N deterministic moments for one bench wallet (idempotent) so the
listing has rows to return; the bench needs the configured database (migrations applied).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from deployments.commands import add_config_option

__all__ = ["add_parser", "run", "serve_child", "MODES"]

MODES = ("uvicorn", "default", "fast")
_SERVICE_ID = "bench"
_ENDPOINTS = ("/health", "/v1/moments?limit=20")


def add_parser(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--concurrency", type=int, default=16, help="connections in flight")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per endpoint and mode")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    parser.add_argument("--replicas", type=int, default=1, help="Serve replicas")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="upsert N bench moments first")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def run(args: argparse.Namespace) -> int:
    if args.child:
        return serve_child(args.child, args.port, args.config, args.replicas)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes) or args.concurrency < 1 or args.seconds <= 0:
        print(f"oof bench api: --modes from {MODES}, --concurrency >= 1, --seconds > 0", file=sys.stderr)
        return 2
    from deployments.settings_loader import load_or_exit

    settings = load_or_exit(extra_files=args.config)
    if args.seed:
        asyncio.run(_seed(settings, args.seed))
    secret = secrets.token_hex(16)
    env = {
        **os.environ,
        "OOF_AUTH__SERVICE_SECRETS": json.dumps({_SERVICE_ID: [secret]}),
        "OOF_RATE_LIMITS__POLICIES__SERVICE__LIMIT": "1000000000",  # measure the API, not the limiter's 429s
    }
    print(f"API bench: {args.concurrency} connections, {args.seconds:g} s per endpoint, "
          f"{os.cpu_count()} CPUs shared by server and load generator")
    table: dict[tuple[str, str], Result] = {}
    for mode in modes:
        port = _free_port()
        child = _start_child(mode, port, args, env)
        try:
            for endpoint in _ENDPOINTS:
                request = _request_factory(port, endpoint, secret)
                asyncio.run(_load(port, request, args.concurrency, 1.0))  # warm-up
                table[(mode, endpoint)] = result = asyncio.run(_load(port, request, args.concurrency, args.seconds))
                print(f"  {mode:8} {endpoint:22} {result.rps:9,.0f} req/s  p50 {result.pct(0.5):7.2f} ms"
                      f"  p99 {result.pct(0.99):7.2f} ms  non-200 {result.errors}", flush=True)
        finally:
            _stop_child(child)
    _report(table, modes)
    return 0


def _report(table: dict[tuple[str, str], Result], modes: list[str]) -> None:
    print("\n| mode | endpoint | req/s | p50 ms | p99 ms | non-200 | vs uvicorn |\n|---|---|---|---|---|---|---|")
    for (mode, endpoint), result in table.items():
        base = table.get(("uvicorn", endpoint))
        ratio = f"{result.rps / base.rps:.2f}x" if base and base.rps else "-"
        print(f"| {mode} | `{endpoint}` | {result.rps:,.0f} | {result.pct(0.5):.2f} | {result.pct(0.99):.2f} "
              f"| {result.errors} | {ratio} |")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_child(mode: str, port: int, args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen[str]:
    """The server of `mode` in a child process; its logs (access log included, as shipped) go to a file."""
    command = [sys.executable, "-m", "deployments.cli", "bench", "api", "--child", mode, "--port", str(port),
               "--replicas", str(args.replicas), *[f"--config={path}" for path in args.config]]
    log_path = os.path.join(tempfile.gettempdir(), f"oof-bench-api-{mode}.log")
    with open(log_path, "w") as log_file:
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
                                 text=True, env=env)
    started = time.monotonic()
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("READY"):
            print(f"{mode}: ready in {time.monotonic() - started:.1f} s (server log: {log_path})", flush=True)
            threading.Thread(target=child.stdout.read, daemon=True).start()  # never let a full pipe block it
            return child
    raise SystemExit(f"oof bench api: the {mode} server did not start (exit code {child.wait()}; see {log_path})")


def _stop_child(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.close()  # the child stops when its stdin closes
    try:
        child.wait(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()


def _request_factory(port: int, endpoint: str, secret: str) -> Callable[[], bytes]:
    head = f"Host: 127.0.0.1:{port}\r\nConnection: keep-alive\r\n"
    if endpoint == "/health":
        data = f"GET {endpoint} HTTP/1.1\r\n{head}\r\n".encode()
        return lambda: data
    from deployments.auth import service_authorization

    counter = iter(range(1, 1 << 62))

    def signed() -> bytes:
        target = f"{endpoint}&_n={next(counter)}"  # service tokens are single use: every request differs
        token = service_authorization(_SERVICE_ID, secret, "GET", target, b"", int(time.time()))
        return f"GET {target} HTTP/1.1\r\n{head}Authorization: {token}\r\n\r\n".encode()

    return signed


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    return status


async def _load(port: int, request: Callable[[], bytes], concurrency: int, seconds: float) -> Result:
    result = Result()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (started := time.perf_counter()) < deadline:
                writer.write(request())
                status = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.errors += status != 200
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result


async def _seed(settings, count: int) -> None:  # type: ignore[no-untyped-def]
    from decimal import Decimal

    from core.models import Moment, MomentKind, MomentStatus, moment_id
    from streams.storage import apply_migrations, create_pool, resolve_dsn, upsert_moments

    wallet = "BenchWa11et1111111111111111111111111111111"
    kinds = list(MomentKind)
    pool = await create_pool(settings.database, await asyncio.to_thread(resolve_dsn, settings.database))
    try:
        await apply_migrations(pool)
        moments = [
            Moment(id=moment_id(kinds[i % 5], wallet, wallet, f"bench{i}"), kind=kinds[i % 5], wallet=wallet,
                   mint=wallet, severity=Decimal(i % 10) / 10, pct=Decimal("0.5"), usd_value=Decimal(i),
                   window_start=1_700_000_000, window_end=1_700_600_000, sig_ref=f"bench{i}", slot_ref=i,
                   status=MomentStatus.FINAL, detected_at=1_700_000_000 + i, updated_at=1_700_000_000 + i)
            for i in range(count)
        ]
        async with pool.acquire() as conn:
            await upsert_moments(conn, moments)
    finally:
        await pool.close()
    print(f"seeded {count} moments for {wallet}")


def serve_child(mode: str, port: int, config_files: list[str], replicas: int) -> int:
    """The server side of one mode (a child process): serve on `port`, print READY, stop when stdin closes."""
    from deployments.logging import configure_logging
    from deployments.settings_loader import load_or_exit

    settings = load_or_exit(extra_files=config_files)
    configure_logging(settings.log)  # stderr; stdout carries only READY
    if mode == "uvicorn":
        asyncio.run(_uvicorn(settings, port))
        return 0
    import ray

    from deployments import serve_app
    from deployments.commands.serve import FAST_DATA_PLANE_VARS

    config = serve_app.load_serve_config()
    controller = config.controller_options.runtime_env or {} if config.controller_options else {}
    env = {k: v for k, v in controller.get("env_vars", {}).items() if k not in FAST_DATA_PLANE_VARS}
    if mode == "fast":
        env.update(dict.fromkeys(FAST_DATA_PLANE_VARS, "1"))
    ray.init(include_dashboard=False, log_to_driver=False)
    serve_app.run(config, http_host="127.0.0.1", http_port=port, overrides={"num_replicas": replicas},
                  controller_env=env)
    print("READY", flush=True)
    sys.stdin.read()
    ray.shutdown()  # not serve.shutdown(): with HAProxy it waits out a 30 s timeout
    return 0


async def _uvicorn(settings, port: int) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from deployments.app import build_app
    from deployments.compose import open_deps

    async with open_deps(settings) as deps:
        config = uvicorn.Config(build_app(settings, deps), host="127.0.0.1", port=port, lifespan="off",
                                access_log=False, log_level="warning")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.read)
        server.should_exit = True
        await task

"""`oof bench engine`: throughput and memory of the detection engine alone, on one core.

A synthetic stream of TradeEvents is generated in memory first (not timed): `--wallets`
tracked traders and a few untracked market wallets trade `--mints` tokens (popularity
Zipf-like, prices random walks with `--volatility` per trade) against USDC (60 %), SOL
(30 %) or another token (5 %);
the market wallets' SOL/USDC swaps (5 %) give SOL its price. Four events per slot, one
slot every `--seconds-per-slot` of event time, so 7-day windows, 24 h RUG confirmations
and idle days really close during a default run.

Reported: which engine ran (`core._native.mode()`: mypyc-compiled or pure Python, see
README "Building the engine"); events/s of the engine over the stream in batches of 500
(`Engine.process_batch(coalesce=True)`, as a pipeline shard runs it, with
`actors.gc_policy.GcPolicy` as in the shard actors; best of `--repeat` fresh engines); the
same stream through the *baseline* — a plain loop that only builds each event's dedup key,
checks/adds it in a set and advances a `Watermark` (the floor any engine pays) — and the
ratio of the two times; a digest of every upsert (kind, id, figures, explain) so runs can
be compared; when the compiled engine ran, the same bench in a subprocess with
`OOF_PURE_PYTHON=1` (`--no-pure` skips it) and the speed-up, digests compared; then the
memory the engine retains after the run (tracemalloc, a second run) per tracked wallet.
`--profile` prints the top functions (cProfile) to stderr (it sees compiled functions only
as their callers' time); `--instructions` counts the instructions the compiled engine
executes (callgrind: the same on a busy or a quiet machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run", "synthetic_events", "baseline", "child_argv", "BATCH"]

# Inputs per `Engine.process` batch between two `GcPolicy.after` calls: the pipeline's batch size.
BATCH = 500


def add_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    engine = sub.add_parser("engine", help="the in-process detection engine on a synthetic stream")
    engine.add_argument("--events", type=int, default=200_000, help="trade events to generate")
    engine.add_argument("--wallets", type=int, default=2_000, help="tracked trader wallets")
    engine.add_argument("--mints", type=int, default=200, help="tokens traded")
    engine.add_argument("--shards", type=int, default=1, help="in-process shards")
    engine.add_argument("--seconds-per-slot", type=int, default=15, help="event time between slots")
    engine.add_argument("--volatility", type=float, default=0.005, help="stdev of a mint's log price move per trade")
    engine.add_argument("--seed", type=int, default=7)
    engine.add_argument("--repeat", type=int, default=2, help="engine runs (fresh each); the best time is reported")
    engine.add_argument("--profile", action="store_true", help="print the top functions (cProfile) of the first run")
    engine.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    engine.add_argument("--instructions", action="store_true",
                        help="also count the compiled engine's instructions under valgrind (deterministic; minutes)")
    engine.add_argument("--no-pure", action="store_true",
                        help="skip the pure-Python comparison run (a subprocess with OOF_PURE_PYTHON=1)")
    engine.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # the comparison run: + a JSON line
    # the counted run under callgrind: wait for instrumentation before the engine (bench_instructions)
    engine.add_argument("--instrument-when", type=Path, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)
    from deployments.commands import bench_api  # `oof bench api`; its own handler overrides `run`

    bench_api.add_parser(sub.add_parser("api", help="the HTTP API: plain uvicorn vs the Ray Serve data planes"))
    from deployments.commands import bench_pipeline  # `oof bench pipeline`; its own handler too

    bench_pipeline.add_parser(sub.add_parser("pipeline", help="the Ray actor pipeline end to end vs the engine"))
    from deployments.commands import bench_live  # `oof bench live`; its own handler too

    bench_live.add_parser(sub.add_parser("live", help="live publish → moment latency vs the live source alone"))


def run(args: argparse.Namespace) -> int:
    if args.events < 1 or args.wallets < 1 or args.mints < 2 or args.shards < 1 or args.repeat < 1:
        print("oof bench: --events, --wallets, --shards, --repeat must be >= 1 and --mints >= 2", file=sys.stderr)
        return 2
    from core import _native
    from core.engine import Engine
    from actors.gc_policy import GcPolicy

    events, traders = synthetic_events(args.events, args.wallets, args.mints, args.seed, args.seconds_per_slot,
                                       volatility=args.volatility)
    policy = GcPolicy().start()  # as `oof replay` and the shard actors run it
    span_s = (events[-1].block_time or 0) - (events[0].block_time or 0)
    print(f"engine bench: {len(events):,} trade events, {args.wallets:,} tracked wallets, {args.mints} mints, "
          f"{args.shards} shard(s), volatility {args.volatility}, seed {args.seed} — one core, in-process, "
          f"batches of {BATCH}, gc: actors.gc_policy")
    print(f"stream: {events[-1].slot - events[0].slot + 1:,} slots, {span_s / 86_400:.1f} days of event time")
    build = _native.mode()
    print(f"build:  {'mypyc-compiled engine' if build == 'compiled' else 'pure-Python engine (' + build + ')'}")

    base_s = _best(lambda: baseline(events))
    if args.instrument_when is not None:
        from deployments.commands.bench_instructions import wait_for_instrumentation

        wait_for_instrumentation(args.instrument_when)
    times: list[float] = []
    digests: set[str] = set()
    timed_collections = 0
    for run_no in range(args.repeat):  # a fresh engine each time; the best time counts, as for the baseline
        engine = Engine(shard_count=args.shards, tracked=traders)
        profiler = None
        if args.profile and run_no == 0:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        before = policy.collections
        started = time.perf_counter()
        upserts = _drive(engine, events, policy)
        times.append(time.perf_counter() - started)
        timed_collections += policy.collections - before
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        digests.add(_digest(upserts))
        if run_no + 1 < args.repeat:
            del engine, upserts
            policy.collect()  # the previous engine's state is garbage now, not the next run's cost
    engine_s = min(times)

    n = len(events)
    runs = ", ".join(f"{n / t:,.0f}" for t in times)
    print(f"engine:   {n / engine_s:>12,.0f} events/s  ({engine_s:.2f} s; best of {args.repeat} fresh engines: {runs})")
    print(f"baseline: {n / base_s:>12,.0f} events/s  ({base_s:.3f} s; dedup key + set + Watermark.advance only)")
    print(f"ratio:    engine time / baseline time = {engine_s / base_s:.1f}x")
    kinds = Counter(m.kind.value for m in upserts)
    final = {m.id: m for m in upserts}
    finals = Counter(m.kind.value for m in final.values() if m.status.value == "final")
    print("moments:  " + ", ".join(f"{k} {len([m for m in final.values() if m.kind.value == k])} "
                                    f"({finals[k]} final, {kinds[k]} upserts)" for k in sorted(kinds)))
    s = engine.stats
    print(f"engine:   {s.slots:,} slots, {s.ticks:,} ticks, {s.duplicates} duplicates")
    digest = _digest(upserts) if len(digests) == 1 else f"DIFFERENT between runs {sorted(digests)}"
    print(f"upserts:  {len(upserts):,}, digest {digest}")
    del upserts
    full_s = policy.collect()
    every_s = min(policy.max_interval_s, policy.collect_every / (n / engine_s))
    print(f"gc:       a full collection of what the run left alive takes {full_s:.2f} s; the policy runs one "
          f"every {policy.collect_every:,} inputs or {policy.max_interval_s:.0f} s (~{full_s / every_s:.1%} of "
          f"engine time at this speed), {timed_collections} in the timed runs")
    if args.child:
        print(json.dumps({"engine_s": engine_s, "base_s": base_s, "digest": digest, "build": build}))
        return 0
    if build == "compiled" and not args.no_pure:
        _compare_pure(args, engine_s, base_s, digest)
    if args.instructions:
        from deployments.commands.bench_instructions import report_instructions

        report_instructions(args, build)
    if not args.no_memory:
        retained = _retained_bytes(lambda: _fresh_run(Engine, args, traders, events))
        print(f"memory:   {retained / 2**20:.1f} MiB retained after the run = "
              f"{retained / args.wallets:,.0f} bytes per tracked wallet (price book included)")
    return 0


def _digest(upserts: list[Any]) -> str:
    """SHA-256 (first 16 hex digits) over every upsert in order: equal digests, equal moments."""
    h = hashlib.sha256()
    for m in upserts:
        h.update(repr(m).encode())
    return h.hexdigest()[:16]


def child_argv(args: argparse.Namespace, repeat: int) -> list[str]:
    """This bench on the same stream in a subprocess, reporting one JSON line (`--child`)."""
    return [sys.executable, "-m", "deployments.cli", "bench", "engine", "--events", str(args.events),
            "--wallets", str(args.wallets), "--mints", str(args.mints), "--shards", str(args.shards),
            "--seconds-per-slot", str(args.seconds_per_slot), "--volatility", str(args.volatility),
            "--seed", str(args.seed), "--repeat", str(repeat), "--no-memory", "--no-pure", "--child"]


def _compare_pure(args: argparse.Namespace, engine_s: float, base_s: float, digest: str) -> None:
    """The same bench with the pure-Python engine, in a subprocess (same core affinity)."""
    argv = child_argv(args, args.repeat)
    done = subprocess.run(argv, env={**os.environ, "OOF_PURE_PYTHON": "1"}, capture_output=True, text=True)
    try:
        pure = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"pure:     comparison run failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
        return
    n = args.events
    print(f"pure:     {n / pure['engine_s']:>12,.0f} events/s  ({pure['engine_s']:.2f} s; OOF_PURE_PYTHON=1 in a "
          f"subprocess, same stream; its baseline {n / pure['base_s']:,.0f} events/s)")
    same = "identical" if pure["digest"] == digest else f"DIFFERENT (pure digest {pure['digest']})"
    print(f"speed-up: compiled {pure['engine_s'] / engine_s:.2f}x faster than pure Python "
          f"(time ratios to each run's own baseline: {engine_s / base_s:.1f}x vs {pure['engine_s'] / pure['base_s']:.1f}x);"
          f" upserts {same}")


def _drive(engine: Any, events: list[Any], policy: Any = None) -> list[Any]:
    """The events in batches of `BATCH`, each through `process_batch(coalesce=True)` (as a pipeline
    shard runs them: one upsert per moment per batch), `policy.after` between batches."""
    upserts: list[Any] = []
    for start in range(0, len(events), BATCH):
        upserts += engine.process_batch(events[start:start + BATCH], coalesce=True)
        if policy is not None:
            policy.after(BATCH)
    return upserts + engine.flush()


def _fresh_run(engine_cls: Any, args: argparse.Namespace, traders: list[str], events: list[Any]) -> Any:
    engine = engine_cls(shard_count=args.shards, tracked=traders)
    _drive(engine, events)
    return engine


def _retained_bytes(build: Any) -> int:
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before


def _best(fn: Any, repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def baseline(events: list[Any]) -> int:
    """The floor: each event's dedup key checked and added, the watermark advanced."""
    from core.windows import Watermark

    wm = Watermark()
    seen: set[str] = set()
    for ev in events:
        key = f"{ev.signature}|{ev.wallet}|{ev.ix}"
        if key in seen:
            continue
        seen.add(key)
        wm.advance(ev.slot, ev.block_time)
    return len(seen)


def _address(kind: str, i: int) -> str:
    import hashlib

    import base58

    return base58.b58encode(hashlib.blake2b(f"{kind}:{i}".encode(), digest_size=32).digest()).decode()


def synthetic_events(
    n: int, wallets: int, mints: int, seed: int = 7, seconds_per_slot: int = 15, per_slot: int = 4,
    volatility: float = 0.01,
) -> tuple[list[Any], list[str]]:
    """A deterministic stream of `n` TradeEvents and the tracked trader wallets."""
    from decimal import Decimal

    from core.mints import SOL_MINT, USDC_MINT
    from core.models import Side, TradeEvent

    rng = random.Random(seed)
    traders = [_address("wallet", i) for i in range(wallets)]
    market = [_address("market", i) for i in range(5)]
    tokens = [_address("mint", i) for i in range(mints)]
    weights = [1 / (i + 1) for i in range(mints)]
    cum = list(_accumulate(weights))
    price = [10 ** rng.uniform(-4, 1) for _ in range(mints)]
    sol = 150.0
    held: dict[tuple[int, int], int] = {}
    qtys = (10, 50, 100, 500, 1_000, 5_000)
    slot0, t0 = 300_000_000, 1_750_000_000
    events: list[Any] = []
    for i in range(n):
        slot = slot0 + i // per_slot
        t = t0 + (i // per_slot) * seconds_per_slot
        sig = _address("sig", i)
        r = rng.random()
        if r < 0.05:
            sol = max(10.0, sol * math.exp(rng.gauss(0, 0.004)))
            q = Decimal(rng.choice((1, 2, 5)))
            quote_amount = Decimal(f"{float(q) * sol:.6f}")
            events.append(TradeEvent(sig, slot, t, 0, rng.choice(market), Side.BUY, SOL_MINT, q, USDC_MINT,
                                     quote_amount, quote_amount / q, "raydium_amm_v4", 5_000))
            continue
        w = rng.randrange(wallets)
        m = _pick(rng, cum)
        price[m] = min(1e4, max(1e-8, price[m] * math.exp(rng.gauss(0, volatility))))
        p = price[m]
        qty = rng.choice(qtys)
        have = held.get((w, m), 0)
        side = Side.SELL if have and rng.random() < 0.5 else Side.BUY
        if side is Side.SELL:
            qty = min(qty, have)
        held[(w, m)] = have + (qty if side is Side.BUY else -qty)
        q = Decimal(qty)
        kind = rng.random()
        if kind < 0.60:
            quote, quote_amount = USDC_MINT, Decimal(f"{qty * p:.6f}")
            price_usd = quote_amount / q if quote_amount else None
            if not quote_amount:
                continue
        elif kind < 0.95:
            quote, quote_amount, price_usd = SOL_MINT, Decimal(f"{qty * p / sol:.9f}"), None
            if not quote_amount:
                continue
        else:
            other = (m + 1 + rng.randrange(mints - 1)) % mints
            quote, quote_amount, price_usd = tokens[other], Decimal(f"{qty * p / price[other]:.6f}"), None
            if not quote_amount:
                continue
            side = Side.SWAP
            held[(w, m)] = have + qty
        events.append(TradeEvent(sig, slot, t, 0, traders[w], side, tokens[m], q, quote, quote_amount, price_usd,
                                 "raydium_amm_v4", 5_000))
    return events, traders


def _accumulate(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, cum: list[float]) -> int:
    import bisect

    return min(len(cum) - 1, bisect.bisect_left(cum, rng.random() * cum[-1]))

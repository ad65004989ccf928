"""`oof bench pipeline [--tx N]`: end-to-end throughput of the Ray actor pipeline vs the in-process engine.

The same synthetic stream as `oof bench engine` (TradeEvents: no JSON parsing on either
side) goes through, in one run:

1. `core.engine.Engine` in this process — the baseline;
2. the actor pipeline (oof:ingest → oof:prices-k → oof:shard-jj → oof:sink, in-memory sink)
   on the local Ray, timed from the moment every actor is up until the last batch is
   written; the stream is handed over as one object, so it measures the pipeline, not
   the driver.
Reported: tx/s of both and their ratio; per stage the busy time (ingest assembling and
planning, the slowest price actor and shard per batch summed, the sink); batch latency
p50/p99 (arrival of a batch's first input → its results collected); and whether the two
produced the same moments (they must).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tx", type=int, default=100_000, help="transactions (trade events) to generate")
    parser.add_argument("--wallets", type=int, default=2_000, help="tracked trader wallets")
    parser.add_argument("--mints", type=int, default=200, help="tokens traded")
    parser.add_argument("--shards", type=int, default=4, help="shard actors")
    parser.add_argument("--price-shards", type=int, default=2, help="price actors")
    parser.add_argument("--batch-size", type=int, default=5_000, help="views per batch")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--address", help="Ray cluster to join (default: a local Ray)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.tx < 1 or args.shards < 1 or args.price_shards < 1 or args.batch_size < 1:
        print("oof bench pipeline: --tx, --shards, --price-shards and --batch-size must be >= 1", file=sys.stderr)
        return 2
    import ray

    from actors import PipelineConfig, SourceSpec
    from core.engine import Engine
    from actors.gc_policy import GcPolicy
    from deployments.commands.bench import synthetic_events
    from deployments.pipeline import init_ray, start

    events, traders = synthetic_events(args.tx, args.wallets, args.mints, args.seed)
    policy = GcPolicy().start()  # this process runs the in-process engine for comparison
    print(f"pipeline bench: {len(events):,} trade events, {args.wallets:,} tracked wallets, {args.mints} mints; "
          f"{args.shards} shards, {args.price_shards} price actors, batches of {args.batch_size:,}")

    engine = Engine(tracked=traders)
    started = time.perf_counter()
    expected = {m.id: m for m in [*engine.process_batch(events), *engine.flush()]}
    engine_s = time.perf_counter() - started
    del engine
    policy.stop()

    init_ray(args.address)
    config = PipelineConfig(shard_count=args.shards, price_shards=args.price_shards, batch_size=args.batch_size,
                            checkpoint_interval_s=3600.0, checkpoint_every_batches=1_000_000)
    started = time.perf_counter()
    pipeline = start(config, SourceSpec("items", items=ray.put(events), tracked=tuple(traders)))
    try:
        summary = pipeline.wait()
        got = {m.id: m for m in pipeline.moments()}
    finally:
        pipeline.shutdown()
    wall_s = time.perf_counter() - started
    _report(len(events), engine_s, summary, wall_s, same=got == expected, moments=len(expected))
    return 0 if got == expected else 1


def _report(n: int, engine_s: float, s: dict[str, Any], wall_s: float, *, same: bool, moments: int) -> None:
    actors_s = s["elapsed_s"]
    print(f"in-process engine: {n / engine_s:>10,.0f} tx/s  ({engine_s:.2f} s, one core)")
    print(f"actor pipeline:    {n / actors_s:>10,.0f} tx/s  ({actors_s:.2f} s processing; {wall_s:.1f} s with "
          f"actor start-up) = {engine_s / actors_s:.2f}x the engine's rate")
    print(f"stages (busy s):   ingest assemble {s['assemble_s']:.2f} + plan {s['plan_s']:.2f} | "
          f"prices {s['prices_s']:.2f} | shards {s['shards_s']:.2f} | sink {s['sink_s']:.2f}  "
          f"({s['batches']} batches)")
    print(f"batch latency:     p50 {s['latency_p50_s']} s, p99 {s['latency_p99_s']} s")
    print(f"moments:           {moments:,} — {'identical to the engine' if same else 'DIFFERENT from the engine'}")

"""`oof bench live`: ingest → moment latency of the live pipeline, against the live source alone.

A local Solana node (`streams.localnode.LocalRpcServer`, HTTP + websocket) runs in this
process. Transactions cloned from a recording (`streams.localnode.CloneStream`, default the
bundled demo: real `getTransaction` JSON, every detector fires; `--lanes` copies of its
wallets) are published at a fixed `--rate` (open loop, due times fixed in advance) in slots
of `--slot-ms` (400, like Solana): a slot's transactions share its block time and, by
default (`--delivery burst`), are published together as the slot starts, as Helius notifies
a `confirmed` slot at once (`spread`: evenly over the slot). The pipeline can run a slot
only once the next one starts (or `flush_idle_s` passed): that wait is reported apart.
Per rate, one phase each, each on a fresh node:

1. **baseline**: the live source alone (`bench_live_probe.SourceProbe`: the ingest's
   Helius source in a Ray worker, a no-op `emit`) — publish → emit;
2. **pipeline** (`--sink memory`, `postgres` or `both`): `deployments.pipeline.start` with a
   live Helius source against the node, the settings' pipeline (tunables overridable), an
   in-memory sink or a throwaway PostgreSQL database (created, migrated, dropped after) —
   publish → the sink's write holding the transaction's row ended, and per moment upsert
   from its trigger's publish to the write (split where the trigger's slot closed), and
   (PostgreSQL) to its `oof_moments` NOTIFY (`bench_live_stats` says exactly how). The sink
   reports its writes itself (`SinkActor.take_acks`, wall clock: same machine).

`--warmup` seconds are published first and `--cooldown` after, neither counted. Reported:
achieved tx/s, p50/p95/p99/max, how far publishing fell behind the schedule, unacknowledged
transactions, the actors' own batch latency and busy time per stage, the ratio to the
baseline, and whether the rate was sustained with p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import math
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from deployments.commands import add_config_option, bench_live_db
from deployments.commands.bench_live_stats import LatencyBook, Summary, parse_rates, summarize

__all__ = ["add_parser", "run", "validate", "schedule", "SINKS", "DELIVERIES"]

SINKS = ("memory", "postgres", "both")
DELIVERIES = ("burst", "spread")
_SLOT0 = 300_000_000
_TUNABLES = {"shards": "shard_count", "price_shards": "price_shards", "batch_size": "batch_size",
             "max_batch_delay": "max_batch_delay_s", "flush_idle": "flush_idle_s", "queue_depth": "queue_max_batches"}


def add_parser(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--rate", default="500", help="tx/s to publish; a comma list runs each (e.g. 200,500,1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds published first, not counted")
    parser.add_argument("--cooldown", type=float, default=2.0, help="seconds published after, not counted")
    parser.add_argument("--slot-ms", type=float, default=400.0, help="a new slot this often (0: one slot per tx)")
    parser.add_argument("--delivery", choices=DELIVERIES, default="burst",
                        help="burst: a slot's transactions published together as it starts (Helius at `confirmed` "
                             "notifies a slot at once); spread: evenly over the slot")
    parser.add_argument("--lanes", type=int, default=16, help="copies of the recording's wallets")
    parser.add_argument("--recording", type=Path, help="JSONL of getTransaction results to clone (default: demo)")
    parser.add_argument("--sink", choices=SINKS, default="both", help="in-memory sink, PostgreSQL, or both")
    parser.add_argument("--admin-dsn", help="PostgreSQL to create the throwaway database on "
                                            "(default: database.url, else the embedded server)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the source-only phase")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="wait this long for the last writes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--address", help="Ray cluster to join (default: a local Ray)")
    tunables = parser.add_argument_group("pipeline tunables (default: the settings)")
    tunables.add_argument("--shards", type=int)
    tunables.add_argument("--price-shards", type=int)
    tunables.add_argument("--batch-size", type=int, help="views per batch")
    tunables.add_argument("--max-batch-delay", type=float, help="seconds a partial batch may wait")
    tunables.add_argument("--flush-idle", type=float, help="seconds without input before a held slot runs")
    tunables.add_argument("--queue-depth", type=int, help="batches in flight (pipeline.queue_max_batches)")
    parser.set_defaults(handler=run)


def validate(args: argparse.Namespace) -> list[float]:
    """The rates to run; ValueError with the reason when an argument is out of range."""
    rates = parse_rates(args.rate)
    if args.seconds <= 0 or args.warmup < 0 or args.cooldown < 0 or args.slot_ms < 0 or args.drain_timeout <= 0:
        raise ValueError("--seconds and --drain-timeout must be > 0; --warmup, --cooldown, --slot-ms >= 0")
    if args.lanes < 1:
        raise ValueError("--lanes must be >= 1")
    for name in _TUNABLES:
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0")
    return rates


def run(args: argparse.Namespace) -> int:
    try:
        rates = validate(args)
    except ValueError as exc:
        print(f"oof bench live: {exc}", file=sys.stderr)
        return 2
    from core.paths import project_root
    from deployments.pipeline import init_ray
    from deployments.settings_loader import load_or_exit
    from streams.localnode import load_results

    settings = load_or_exit(extra_files=args.config)
    path = args.recording or project_root() / "configs" / "recordings" / "demo.jsonl"
    results = load_results(path)
    sinks = ["memory", "postgres"] if args.sink == "both" else [args.sink]
    admin_dsn = bench_live_db.admin_dsn_for(args, settings) if "postgres" in sinks else None
    init_ray(args.address)
    lanes_wallets = len({_payer(r) for r in results}) * args.lanes
    print(f"live bench: {path.name} ({len(results)} transactions) cloned into {args.lanes} lanes = {lanes_wallets} "
          f"wallets; a slot every {args.slot_ms:g} ms, its transactions published "
          f"{'together as it starts' if args.delivery == 'burst' else 'evenly over it'}; {args.warmup:g} s warm-up, "
          f"{args.seconds:g} s measured, {args.cooldown:g} s cool-down per phase")
    rows: list[tuple[Any, ...]] = []
    for rate in rates:
        print(f"\nrate {rate:,.0f} tx/s")
        base = None if args.no_baseline else asyncio.run(_phase(args, settings, results, rate, None, None))
        if base is not None:
            print(f"  baseline (node → Helius source → no-op emit, a Ray worker): achieved {base.achieved:,.0f} tx/s;"
                  f" publish → emit {base.tx.line()}")
        for sink in sinks:
            got = asyncio.run(_phase(args, settings, results, rate, sink, admin_dsn))
            _report(sink, got, base)
            rows.append((rate, sink, got, base))
    _table(rows)
    return 0


@dataclasses.dataclass
class Measured:
    achieved: float
    tx: Summary
    lag: Summary
    unacked: int
    slot_wait: Summary | None = None
    after_close: Summary | None = None
    moments_sink: Summary | None = None
    moments_notify: Summary | None = None
    notify_offset: Summary | None = None
    pipeline: dict[str, Any] | None = None

    @property
    def sustained(self) -> bool:
        late = [self.tx.p99, *(m.p99 for m in (self.moments_sink, self.moments_notify) if m and m.count)]
        return self.unacked == 0 and self.tx.count > 0 and all(p <= 1.0 for p in late)


async def _phase(args: argparse.Namespace, settings: Any, results: list[Any], rate: float, sink: str | None,
                 admin_dsn: str | None) -> Measured:
    """One phase on a fresh node: the baseline (`sink` None) or the pipeline with that sink."""
    from streams.localnode import LocalRpcServer
    from streams.localnode.clones import CloneStream

    stream = CloneStream(results, lanes=args.lanes, seed=f"{args.seed}-{rate:g}-{sink or 'baseline'}")
    dsn = await bench_live_db.create_database(admin_dsn) if sink == "postgres" else None
    try:
        async with LocalRpcServer() as node:
            solana = settings.solana.model_copy(update={"source": "helius", "rpc_http_url": node.http_url,
                                                        "rpc_ws_url": node.ws_url, "wallets": stream.wallets})
            if sink is None:
                return await _baseline(args, settings, node, stream, rate, solana)
            return await _pipeline(args, settings, node, stream, rate, solana, dsn)
    finally:
        if dsn is not None:
            await bench_live_db.drop_database(admin_dsn, dsn)  # type: ignore[arg-type]


async def _baseline(args: argparse.Namespace, settings: Any, node: Any, stream: Any, rate: float,
                    solana: Any) -> Measured:
    import ray

    from deployments.commands.bench_live_probe import SourceProbe

    probe = SourceProbe.remote()  # type: ignore[attr-defined]
    try:
        await probe.start.remote(solana, settings.pipeline.batch_size)
        await node.wait_for_subscriptions(1, "transaction", timeout=60)
        book = await _drive(args, node, stream, rate, probe)
        await probe.stop.remote()
    finally:
        ray.kill(probe, no_restart=True)
    return Measured(book.achieved_rate(), summarize(book.tx_latencies()), summarize(book.publish_lag()),
                    book.unacked())


async def _pipeline(args: argparse.Namespace, settings: Any, node: Any, stream: Any, rate: float, solana: Any,
                    dsn: str | None) -> Measured:
    import ray

    from actors import SourceSpec, actor_name
    from deployments.pipeline import pipeline_config, start

    config = pipeline_config(settings, dsn=dsn, resume=False, namespace=f"oof-bench-{secrets.token_hex(4)}")
    config = dataclasses.replace(config, **{field: getattr(args, name) for name, field in _TUNABLES.items()
                                            if getattr(args, name) is not None})
    pipeline = await asyncio.to_thread(start, config, SourceSpec("settings", solana=solana))
    listener = None
    try:
        sink = ray.get_actor(actor_name("sink", lane=config.lane), namespace=config.namespace)
        await sink.take_acks.remote()  # starts its record
        await node.wait_for_subscriptions(1, "transaction", timeout=120)
        book = LatencyBook((0.0, 0.0))
        if dsn is not None:
            listener = bench_live_db.Listener(dsn, book)
            listener.start()
        book = await _drive(args, node, stream, rate, sink, book)
        await asyncio.sleep(0.2)  # the last NOTIFYs
        await asyncio.to_thread(pipeline.stop)
        summary = await asyncio.to_thread(pipeline.wait, 60)
    finally:
        if listener is not None:
            listener.stop()
        await asyncio.to_thread(pipeline.shutdown)
    notify, offsets = book.moment_notify_latencies()
    waits, rest = book.moment_split()
    return Measured(book.achieved_rate(), summarize(book.tx_latencies()), summarize(book.publish_lag()),
                    book.unacked(), summarize(waits), summarize(rest), summarize(book.moment_sink_latencies()),
                    summarize(notify) if dsn is not None else None, summarize(offsets) if dsn is not None else None,
                    summary)


async def _drive(args: argparse.Namespace, node: Any, stream: Any, rate: float, acker: Any,
                 book: LatencyBook | None = None) -> LatencyBook:
    """Publish warm-up + measured + cool-down at `rate`, collecting `acker.take_acks` meanwhile, then wait
    (at most `--drain-timeout`) until every measured transaction is acknowledged."""
    t0 = time.time() + 0.1
    book = book or LatencyBook((0.0, 0.0))
    book.window = (t0 + args.warmup, t0 + args.warmup + args.seconds)
    done = asyncio.Event()

    async def collect() -> None:
        while True:
            book.ack(await acker.take_acks.remote())
            if done.is_set():
                return
            await asyncio.sleep(0.05)

    collector = asyncio.create_task(collect())
    gc.collect()
    gc.disable()  # the node's ledger holds every transaction: full collections would stall the node for 100s of ms
    try:
        await _publish(node, stream, book, rate, args.slot_ms / 1000, args.delivery == "burst", t0,
                       args.warmup + args.seconds + args.cooldown)
        deadline = time.time() + args.drain_timeout
        while book.unacked() and time.time() < deadline and not collector.done():
            await asyncio.sleep(0.1)
    finally:
        gc.enable()
        done.set()
        await collector
    return book


def schedule(rate: float, slot_s: float, burst: bool) -> tuple[Any, Any]:
    """(due offset of transaction i, its slot offset): `rate * slot_s` transactions per slot (below 1: empty
    slots between), due evenly at `rate` — or, in bursts, all of a slot's due as it starts. `slot_s` 0: a
    slot per transaction."""
    if slot_s <= 0:
        return (lambda i: i / rate), (lambda i: i)
    per_slot = rate * slot_s

    def slot(i: int) -> int:
        return int(i / per_slot + 1e-9)  # 2 / 0.4 is 4.999… in floating point

    return ((lambda i: slot(i) * slot_s) if burst else (lambda i: i / rate)), slot


async def _publish(node: Any, stream: Any, book: LatencyBook, rate: float, slot_s: float, burst: bool, t0: float,
                   total_s: float) -> None:
    n = math.ceil(rate * total_s)
    due, slot_of = schedule(rate, slot_s, burst)
    i, slot, block_time = 0, None, 0
    while i < n:
        await asyncio.sleep(max(0.0, t0 + due(i) - time.time()))  # 0: still let the node and the collector run
        now = time.time() - t0
        while i < n and due(i) <= now:
            clone = stream.next()
            s = _SLOT0 + slot_of(i)
            new_slot = s != slot
            if new_slot:
                slot, block_time = s, max(block_time, clone.event_time)
            clone.result["blockTime"] = block_time  # a slot's transactions share its time; the node serves it
            at = time.time()
            await node.publish(clone.result, slot=s, copy_result=False)
            book.publish(clone.signature, t0 + due(i), at, block_time, new_slot)
            i += 1


def _payer(result: Any) -> str:
    from streams.codec import tx_account_keys

    return tx_account_keys(result)[0]


def _report(sink: str, m: Measured, base: Measured | None) -> None:
    name = {"memory": "in-memory sink", "postgres": "PostgreSQL sink"}[sink]
    print(f"  pipeline, {name}: achieved {m.achieved:,.0f} tx/s (publishing behind schedule: p99 "
          f"{m.lag.p99 * 1000:,.0f} ms, max {m.lag.max * 1000:,.0f} ms); unacknowledged after the drain: {m.unacked}")
    print(f"    publish → transaction row written: {m.tx.line()}")
    if m.moments_sink is not None:
        print(f"    trigger → moment written:       {m.moments_sink.line()}")
    if m.slot_wait is not None and m.after_close is not None and m.slot_wait.count:
        print(f"      of which trigger → its slot closed: {m.slot_wait.line()}")
        print(f"      and slot closed → moment written:   {m.after_close.line()}")
    if m.moments_notify is not None and m.notify_offset is not None:
        print(f"    trigger → moment NOTIFY seen:   {m.moments_notify.line()}; NOTIFY − write end "
              f"p50 {m.notify_offset.p50 * 1000:,.1f} ms, p99 {m.notify_offset.p99 * 1000:,.1f} ms")
    s = m.pipeline or {}
    if s:
        print(f"    in the actors (batch: first input at the ingest → results collected): p50 "
              f"{_ms(s.get('latency_p50_s'))}, p99 {_ms(s.get('latency_p99_s'))}; {s.get('batches', '?')} batches; "
              f"busy s: assemble {s.get('assemble_s')}, plan {s.get('plan_s')}, prices {s.get('prices_s')}, "
              f"shards {s.get('shards_s')}, sink {s.get('sink_s')}")
    if base is not None and base.tx.count and m.tx.count:
        print(f"    ratio to the baseline (publish → emit): p50 {m.tx.p50 / max(base.tx.p50, 1e-4):,.0f}x, "
              f"p99 {m.tx.p99 / max(base.tx.p99, 1e-4):,.0f}x (+{(m.tx.p99 - base.tx.p99) * 1000:,.0f} ms)")
    print(f"    {'sustained' if m.sustained else 'NOT sustained'} with p99 <= 1 s")


def _ms(value: Any) -> str:
    return "?" if value is None else f"{float(value) * 1000:,.0f} ms"


def _table(rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    print("\nrate tx/s | sink     | achieved | tx p50 / p99 ms | moment p99 ms (write / NOTIFY) | baseline p99 ms | "
          "sustained")
    for rate, sink, m, base in rows:
        moment = " / ".join(f"{x.p99 * 1000:,.0f}" if x is not None and x.count else "-"
                            for x in (m.moments_sink, m.moments_notify))
        base_p99 = f"{base.tx.p99 * 1000:,.0f}" if base is not None and base.tx.count else "-"
        tx = f"{m.tx.p50 * 1000:>6,.0f} / {m.tx.p99 * 1000:>6,.0f}"
        print(f"{rate:>9,.0f} | {sink:<8} | {m.achieved:>8,.0f} | {tx} | {moment:>30} | {base_p99:>15} | "
              f"{'yes' if m.sustained else 'no'}")

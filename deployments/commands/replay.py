"""`oof replay FILE.jsonl --out moments.jsonl`: the detection engine over a recording.

One `getTransaction` result per line (bare, `{"result": …}` or fixture rows). The file is
read twice: a first pass indexes every line by slot (and collects the fee payers), the
second feeds the engine in slot order — what live processing would have seen — whatever
order the lines were recorded in. Without `--wallets` every fee payer in the file is
tracked, so transfers into them are seen from their first line. A line that cannot be
read gets a message with its line number on stderr and the run goes on; the exit code is
then 1, like `oof parse`. The output holds every moment in its final state (the last
upsert per id), one JSON object per line. The engine runs in-process; the end of the
file closes nothing (open moments stay open, unfinished idle periods emit nothing).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from deployments.commands import add_config_option

__all__ = ["add_parser", "run", "replay"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("file", type=Path, help="JSONL of getTransaction results")
    parser.add_argument("--out", type=Path, required=True, help="where to write the moments (JSONL)")
    parser.add_argument("--wallets", help="comma-separated wallets to track (default: every fee payer in the file)")
    parser.add_argument("--shards", type=int, default=1, help="in-process shards (results do not depend on it)")
    parser.add_argument("--actors", action="store_true", default=True,
                        help="through the Ray actor pipeline, the default (shards: pipeline.shard_count unless --shards > 1)")
    parser.add_argument("--in-process", dest="actors", action="store_false",
                        help="the engine alone in this process (no Ray; same moments)")
    parser.add_argument("--price-shards", type=int, help="actor mode: price actors (default pipeline.price_shards)")
    parser.add_argument("--address", help="actor mode: Ray cluster to join (default: a local Ray)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from deployments.settings_loader import load_or_exit

    settings = load_or_exit(extra_files=args.config)
    if args.shards < 1:
        print("oof replay: --shards must be at least 1", file=sys.stderr)
        return 2
    wallets = None if args.wallets is None else [w.strip() for w in args.wallets.split(",") if w.strip()]
    try:
        if args.actors:
            shards = args.shards if args.shards > 1 else settings.pipeline.shard_count
            return replay_actors(args.file, args.out, wallets=wallets, shards=shards, thresholds=settings.thresholds,
                                 price_shards=args.price_shards or settings.pipeline.price_shards,
                                 batch_size=settings.pipeline.batch_size, address=args.address, err=sys.stderr)
        return replay(args.file, args.out, wallets=wallets, shards=args.shards, thresholds=settings.thresholds,
                      err=sys.stderr)
    except OSError as exc:
        print(f"oof replay: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1


def replay(
    path: Path,
    out_path: Path,
    *,
    wallets: list[str] | None = None,
    shards: int = 1,
    thresholds: Any = None,
    err: IO[str] = sys.stderr,
) -> int:
    import orjson

    from core.codec import moment_to_dict
    from core.engine import Engine
    from core.errors import ParseError
    from actors.gc_policy import GcPolicy

    started = time.perf_counter()
    policy = GcPolicy().start()  # a batch job full of long-lived state (see actors.gc_policy)
    entries, payers, bad = _scan(path, err)
    tracked = payers if wallets is None else set(wallets)
    engine = Engine(thresholds, shard_count=shards, tracked=tracked)
    last: dict[str, Any] = {}
    transactions = 0
    with _progress(err, len(entries)) as advance, path.open("rb") as fh:
        for done, (_, number, offset, size) in enumerate(entries, start=1):
            fh.seek(offset)
            try:
                upserts = engine.process(orjson.loads(fh.read(size)))
            except ParseError as exc:
                bad += 1
                print(f"line {number}: {exc}", file=err)
                continue
            transactions += 1
            for moment in upserts:
                last[moment.id] = moment
            if done % 500 == 0:
                advance(done)
                policy.after(500)
        for moment in engine.flush():
            last[moment.id] = moment
        advance(len(entries))
    elapsed = time.perf_counter() - started
    policy.stop()

    moments = sorted(last.values(), key=lambda m: (m.slot_ref, m.kind.value, m.id))
    with out_path.open("wb") as out:
        for moment in moments:
            out.write(orjson.dumps(moment_to_dict(moment)) + b"\n")
    print(_summary(transactions, bad, elapsed, moments, engine, out_path), file=err)
    return 1 if bad else 0


def _scan(path: Path, err: IO[str]) -> tuple[list[tuple[int, int, int, int]], set[str], int]:
    """Every readable line as (slot, line number, offset, size) in slot order, the fee payers,
    and how many lines could not be read (reported on `err`)."""
    import orjson

    from core.errors import ParseError
    from core.parse import unwrap_result

    entries: list[tuple[int, int, int, int]] = []
    payers: set[str] = set()
    bad = offset = 0
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            size = len(line)
            if line.strip():
                try:
                    row = orjson.loads(line)
                    result = unwrap_result(row)
                    slot = result.get("slot")
                    if not isinstance(slot, int) or isinstance(slot, bool):
                        raise ParseError("slot is missing or not an integer")
                    payers.add(_fee_payer(row, result))
                    entries.append((slot, number, offset, size))
                except orjson.JSONDecodeError as exc:
                    bad += 1
                    print(f"line {number}: not valid JSON ({exc})", file=err)
                except ParseError as exc:
                    bad += 1
                    print(f"line {number}: {exc}", file=err)
            offset += size
    entries.sort()
    return entries, payers, bad


def _fee_payer(row: Any, result: Any) -> str:
    from core.parse import parse_transaction

    tx = result.get("transaction")
    if isinstance(tx, dict):
        keys = (tx.get("message") or {}).get("accountKeys") or ()
        if keys and isinstance(keys[0], (str, dict)):
            key = keys[0] if isinstance(keys[0], str) else keys[0].get("pubkey")
            if isinstance(key, str):
                return key
    return parse_transaction(row).wallet  # binary encodings: the parser decodes the message


class _progress:
    """A rich progress bar on an interactive stderr; a no-op otherwise."""

    def __init__(self, err: IO[str], total: int) -> None:
        self.err, self.total, self.bar = err, total, None

    def __enter__(self) -> Any:
        if not getattr(self.err, "isatty", lambda: False)():
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = Progress("replay", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=Console(file=self.err), transient=True)
        self.bar.start()
        task = self.bar.add_task("replay", total=self.total)
        return lambda n: self.bar.update(task, completed=n)  # type: ignore[union-attr]

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summary(transactions: int, bad: int, elapsed: float, moments: list[Any], engine: Any, out: Path) -> str:
    kinds = Counter(m.kind.value for m in moments)
    open_kinds = Counter(m.kind.value for m in moments if m.status.value == "open")
    by_kind = ", ".join(f"{k} {n} ({open_kinds[k]} open)" for k, n in sorted(kinds.items())) or "none"
    rate = transactions / elapsed if elapsed > 0 else 0.0
    s = engine.stats
    return (
        f"replayed {transactions} transactions ({bad} unreadable lines) in {elapsed:.2f}s, {rate:,.0f} tx/s\n"
        f"trades {s.trades}, ticks {s.ticks}, duplicates {s.duplicates}, late {s.late}, stale {s.stale}; "
        f"watermark slot {engine.watermark.slot} time {engine.watermark.time}\n"
        f"moments: {len(moments)} → {out} — {by_kind}"
    )


def replay_actors(
    path: Path,
    out_path: Path,
    *,
    wallets: list[str] | None = None,
    shards: int = 4,
    price_shards: int = 2,
    batch_size: int = 500,
    thresholds: Any = None,
    address: str | None = None,
    err: IO[str] = sys.stderr,
) -> int:
    """`replay` through the actor pipeline (`deployments.pipeline.replay_file`): the same lines in the
    same slot order, the same tracked wallets, the same output — plus tx/s and per-stage timings."""
    import orjson

    from core.codec import moment_to_dict
    from deployments.pipeline import init_ray, replay_file

    if not path.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    entries, payers, bad = _scan(path, err)
    tracked = sorted(payers if wallets is None else set(wallets))
    init_ray(address)
    moments, s = replay_file(path, thresholds, wallets=tracked, shard_count=shards, price_shards=price_shards,
                             batch_size=batch_size)
    moments.sort(key=lambda m: (m.slot_ref, m.kind.value, m.id))
    with out_path.open("wb") as out:
        for moment in moments:
            out.write(orjson.dumps(moment_to_dict(moment)) + b"\n")
    bad += s["parse_errors"]
    kinds = Counter(m.kind.value for m in moments)
    open_kinds = Counter(m.kind.value for m in moments if m.status.value == "open")
    by_kind = ", ".join(f"{k} {n} ({open_kinds[k]} open)" for k, n in sorted(kinds.items())) or "none"
    print(f"replayed {s['tx_in'] - s['parse_errors']} transactions ({bad} unreadable lines) in {s['elapsed_s']:.2f}s, "
          f"{s['tx_per_s']:,.0f} tx/s through {shards} shard and {price_shards} price actors "
          f"({s['wall_s']:.1f}s with actor start-up)\n"
          f"stages (busy s): ingest {s['assemble_s'] + s['plan_s']:.2f}, prices {s['prices_s']:.2f}, "
          f"shards {s['shards_s']:.2f}, sink {s['sink_s']:.2f}; {s['batches']} batches, "
          f"latency p50 {s['latency_p50_s']}s p99 {s['latency_p99_s']}s\n"
          f"engine: duplicates {s['engine']['duplicates']}, late {s['engine']['late']}, stale {s['engine']['stale']}; "
          f"watermark slot {s['watermark'][0]} time {s['watermark'][1]}\n"
          f"moments: {len(moments)} → {out_path} — {by_kind}", file=err)
    return 1 if bad else 0

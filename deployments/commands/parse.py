"""`oof parse FILE.jsonl`: one `getTransaction` result per line in, one JSON object per line out.

A line that cannot be read gets a clear message on stderr (with its line number) and the
run goes on; the exit code is 1 when any line failed. `-` reads stdin.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="JSONL of getTransaction results (bare, {result: …}, or fixture rows); - for stdin")
    parser.add_argument("--wallet", help="report this wallet instead of each transaction's fee payer")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.file == "-":
        return parse_stream(sys.stdin, sys.stdout, sys.stderr, args.wallet)
    try:
        with open(args.file, encoding="utf-8") as fh:
            return parse_stream(fh, sys.stdout, sys.stderr, args.wallet)
    except OSError as exc:
        print(f"oof parse: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1


def parse_stream(src: IO[str], out: IO[str], err: IO[str], wallet: str | None = None) -> int:
    import orjson

    from core.codec import parsed_to_dict
    from core.errors import ParseError
    from core.parse import parse_transaction

    failures = 0
    for number, line in enumerate(src, start=1):
        if not line.strip():
            continue
        try:
            parsed = parse_transaction(orjson.loads(line), wallet=wallet)
        except orjson.JSONDecodeError as exc:
            failures += 1
            print(f"line {number}: not valid JSON ({exc})", file=err)
            continue
        except ParseError as exc:
            failures += 1
            print(f"line {number}: {exc}", file=err)
            continue
        out.write(orjson.dumps(parsed_to_dict(parsed)).decode() + "\n")
    return 1 if failures else 0

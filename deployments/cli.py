"""`oof` console script: dispatches to one module per subcommand.

Subcommand modules are imported lazily so `oof parse` does not pay for Ray's import.
Exit codes: 0 ok, 1 the command's work failed, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("deployments.commands.config", "inspect the effective configuration"),
    "migrate": ("deployments.commands.migrate", "apply SQL migrations to the database"),
    "parse": ("deployments.commands.parse", "parse getTransaction results (JSONL) into flows and trades"),
    "run": ("deployments.commands.run", "run the service locally"),
    "serve": ("deployments.commands.serve", "serve the HTTP API on Ray Serve until Ctrl-C"),
    "replay": ("deployments.commands.replay", "run the detection engine over a recording (JSONL) into moments"),
    "bench": ("deployments.commands.bench", "measure the detection engine's throughput and memory"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oof", description="OOF: Solana trading-mistake detector")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_parser(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`oof config check`: print the effective configuration with secrets masked, or every problem.

Exit 0 with the configuration on stdout (YAML, or JSON with `--json`); exit 2 with
"configuration has N problem(s):" and one line per problem on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from deployments.commands import add_config_option

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate the configuration and print it with secrets masked")
    add_config_option(check)
    check.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    import json

    import yaml

    from core.errors import ConfigError
    from deployments.settings_loader import EXIT_BAD_CONFIG, config_files, load

    env = os.environ if environ is None else environ
    extra: list[Path] = args.config
    try:
        settings = load(env, extra)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_CONFIG
    effective = settings.masked()
    if args.json:
        print(json.dumps(effective, indent=2))
        return 0
    files = ", ".join(str(path) for path in config_files(env, extra))
    print(f"# effective configuration (secrets masked) from {files}, then OOF_* environment variables")
    print(yaml.safe_dump(effective, sort_keys=False, default_flow_style=False), end="")
    return 0

"""One module per `oof` subcommand; each exposes `add_parser(parser)` and `run(args) -> int`."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_config_option"]


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """`--config FILE` (repeatable): YAML layered over the defaults, as every command reads it."""
    parser.add_argument(
        "--config",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="YAML file layered over configs/oof.yaml and $OOF_CONFIG (repeatable, later wins)",
    )

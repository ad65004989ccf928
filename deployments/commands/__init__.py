"""One module per `oof` subcommand; each exposes `add_parser(subparsers)` and `run(args) -> int`."""

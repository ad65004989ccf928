"""The one place a process turns its environment and config files into `Settings`.

Every command calls `load_or_exit`: bad configuration ends the process with exit code 2 and
one message listing every problem, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.errors import ConfigError
from core.paths import project_root
from core.settings import Settings, default_config_files, load_settings

__all__ = ["EXIT_BAD_CONFIG", "config_files", "load", "load_or_exit"]

EXIT_BAD_CONFIG = 2


def config_files(environ: Mapping[str, str], extra_files: Sequence[Path] = ()) -> list[Path]:
    """`configs/oof.yaml`, then `OOF_CONFIG`, then `extra_files` (e.g. `--config`), later winning."""
    return [*default_config_files(project_root(), environ), *(Path(path) for path in extra_files)]


def load(environ: Mapping[str, str] | None = None, extra_files: Sequence[Path] = ()) -> Settings:
    """Settings from `environ` (default: this process's) and the config files; raises `ConfigError`."""
    env = os.environ if environ is None else environ
    return load_settings(env, config_files(env, extra_files))


def load_or_exit(environ: Mapping[str, str] | None = None, extra_files: Sequence[Path] = ()) -> Settings:
    """`load`, but a `ConfigError` is printed to stderr and ends the process with exit code 2."""
    try:
        return load(environ, extra_files)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from None

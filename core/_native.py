"""Which engine modules are compiled with mypyc, and the guard against stale binaries.

`pip install [-e] .` compiles `COMPILED` with mypyc (see `setup.py`): each gets an extension
module (`core/engine.cpython-311-….so`, …) next to its `.py`, plus one shared library
(`core/_native__mypyc….so`). Python prefers an extension module to a source file of the
same name, so after an edit the old binary would silently keep running. `install()` (run
by `core/__init__.py`, before any of them is imported) decides once per process:

- no binaries: nothing to do (pure Python);
- `OOF_PURE_PYTHON=1`: the binaries are skipped, every compiled module loads from source;
- the build manifest (`MANIFEST`, written after a successful build with the SHA-256 of
  the sources it compiled) is missing or no longer matches the sources: the same, with one
  warning on stderr telling to run `pip install -e .` again;
- otherwise the binaries load.

All or nothing: compiled modules call each other's native classes directly, so a mix of
compiled and source modules is never loaded. Stdlib only — `setup.py` loads this file too.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["COMPILED", "MANIFEST", "ENV_PURE", "install", "mode", "sources_digest", "compiled_sources"]

# the hot modules, compiled as one group (models, settings, the parser, snapshots stay Python:
# Ray pickles the models, and the rest is not on the per-trade path)
COMPILED: tuple[str, ...] = (
    "core.engine",
    "core.trades",
    "core.state",
    "core.oracle",
    "core.ticks",
    "core.positions",
    "core.windows",
    "core.detectors.base",
    "core.detectors.s2e",
    "core.detectors.bhd",
    "core.detectors.bad_route",
    "core.detectors.idle_yield",
    "core.detectors.rug",
    "core.detectors._rug_book",
    "core.detectors._ladder",
    "core.detectors._window",
)
GROUP = "core._native"  # mypyc group name: the shared library is core/_native__mypyc.*.so
MANIFEST = "_native_build.json"  # in core/, next to the binaries
ENV_PURE = "OOF_PURE_PYTHON"
REBUILD_HINT = "run `pip install -e .` again to recompile"

_CORE_DIR = os.path.dirname(os.path.abspath(__file__))
_mode: str | None = None


def compiled_sources(core_dir: str = _CORE_DIR) -> list[str]:
    """Paths of the compiled modules' sources, in `COMPILED` order."""
    root = os.path.dirname(core_dir)
    return [os.path.join(root, *name.split(".")) + ".py" for name in COMPILED]


def sources_digest(paths: Sequence[str]) -> str:
    """SHA-256 over the sources' bytes (what a build compiled, what is on disk now)."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        h.update(f"{os.path.basename(path)}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def _binary(source: str) -> str | None:
    stem = source[:-3]
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if os.path.exists(stem + suffix):
            return stem + suffix
    return None


def _read_manifest(core_dir: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(core_dir, MANIFEST), encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _decide(core_dir: str) -> tuple[str, str | None]:
    """(mode, warning): mode is "compiled" or "pure: <why>"."""
    sources = compiled_sources(core_dir)
    binaries = [_binary(s) for s in sources]
    manifest = _read_manifest(core_dir)
    if not any(binaries):
        why = (manifest or {}).get("skipped") or "not compiled"
        return f"pure: {why}", None
    if os.environ.get(ENV_PURE) == "1":
        return f"pure: {ENV_PURE}=1", None
    if manifest is None or not manifest.get("digest"):
        why = "compiled modules without a build manifest (an interrupted or failed build)"
    elif not all(binaries):
        why = "some compiled modules are missing"
    elif manifest["digest"] != sources_digest(sources):
        why = "core sources changed since they were compiled"
    else:
        return "compiled", None
    return f"pure: {why}", f"oof: {why}: using the pure-Python engine (slower); {REBUILD_HINT}\n"


class _SourceFinder:
    """Meta-path finder: the compiled modules load from their `.py`, never the binary."""

    def __init__(self, core_dir: str) -> None:
        self._paths = dict(zip(COMPILED, compiled_sources(core_dir)))

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        source = self._paths.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def install() -> str:
    """Decide once per process whether the compiled modules may load (see the module docstring)."""
    global _mode
    if _mode is None:
        _mode, warning = _decide(_CORE_DIR)
        if _mode != "compiled" and any(_binary(s) for s in compiled_sources()):
            sys.meta_path.insert(0, _SourceFinder(_CORE_DIR))
        if warning:
            sys.stderr.write(warning)
    return _mode


def mode() -> str:
    """"compiled" when the mypyc-built engine runs, else "pure: <why>" (after checking what loaded)."""
    decided = install()
    engine = sys.modules.get("core.engine")
    if engine is not None:
        loaded = "pure" if (engine.__file__ or "").endswith(".py") else "compiled"
        if not decided.startswith(loaded):
            return f"{loaded} (expected {decided})"
    return decided

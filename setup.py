"""Build hook: compile the detection engine's hot modules with mypyc (README "Building the engine").

Everything else is in pyproject.toml. `build_ext` compiles `core._native.COMPILED` into one
mypyc group; if mypyc or a C compiler is missing (or `OOF_PURE_PYTHON=1` at build time) it
warns and the install goes on with the pure-Python engine. It writes `core/_native_build.json`:
the digest of the sources it compiled (so `core._native` can refuse stale binaries) or why
it compiled nothing.
"""

from __future__ import annotations

import glob
import importlib.machinery
import json
import os
import runpy
import sys
import time

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_ROOT = os.path.dirname(os.path.abspath(__file__))
_NATIVE = runpy.run_path(os.path.join(_ROOT, "core", "_native.py"))  # stdlib only; not `import core`
COMPILED: tuple[str, ...] = _NATIVE["COMPILED"]
GROUP: str = _NATIVE["GROUP"]
MANIFEST: str = _NATIVE["MANIFEST"]
MYPYC_FLAGS = ["--ignore-missing-imports", "--follow-imports=silent", "--no-warn-unused-ignores"]


def _warn(message: str) -> None:
    sys.stderr.write(f"\n*** oof build: WARNING: {message}\n*** oof build: the engine stays pure Python (slower)\n\n")


class BuildNative(build_ext):
    """`build_ext` that makes its extensions with mypyc when it runs (not when setup.py is read:
    pip reads it several times per install)."""

    def run(self) -> None:
        target = self._core_dir()
        self._clean(target)
        sources = [os.path.relpath(p, _ROOT) for p in _NATIVE["compiled_sources"](os.path.join(_ROOT, "core"))]
        digest = _NATIVE["sources_digest"]([os.path.join(_ROOT, s) for s in sources])  # before mypyc reads them
        reason, extensions = self._mypyc(sources)
        if not extensions:
            _warn(reason)
            self._manifest(target, {"skipped": reason})
            self.extensions = []
            return
        for ext in extensions:
            ext.optional = True  # a C compiler error is a warning: the install goes on, pure Python
            # what setuptools' finalize_options sets on the extensions it was given
            ext._full_name = self.get_ext_fullname(ext.name)  # type: ignore[attr-defined]
            ext._links_to_dynamic = ext._needs_stub = False  # type: ignore[attr-defined]
            self.ext_map[ext._full_name] = ext  # type: ignore[attr-defined]
        self.extensions = extensions
        started = time.monotonic()
        super().run()
        if not all(self._built(target, e.name) for e in extensions):
            _warn("the C compiler failed on the mypyc output (see above)")
            self._clean(target)
            self._manifest(target, {"skipped": "C compilation failed at install"})
            return
        import mypy.version

        self._manifest(target, {"digest": digest, "mypy": mypy.version.__version__, "modules": list(COMPILED),
                                "build_s": round(time.monotonic() - started, 1)})

    def _mypyc(self, sources: list[str]) -> tuple[str, list[Extension]]:
        if os.environ.get("OOF_PURE_PYTHON") == "1":
            return "OOF_PURE_PYTHON=1 at install", []
        try:
            from mypyc.build import mypycify
        except ImportError as exc:
            return f"mypyc is not available ({exc})", []
        try:
            return "", mypycify([*MYPYC_FLAGS, *sources], group_name=GROUP, opt_level="3")
        except (Exception, SystemExit) as exc:  # mypyc reports type errors by exiting
            return f"mypyc refused the sources ({type(exc).__name__}: {exc})", []

    def _core_dir(self) -> str:
        if self.inplace or getattr(self, "editable_mode", False):
            return os.path.join(_ROOT, "core")
        return os.path.join(os.path.abspath(self.build_lib), "core")

    @staticmethod
    def _built(core_dir: str, name: str) -> bool:
        stem = os.path.join(core_dir, *name.split(".")[1:])  # "core.detectors.base" -> <core>/detectors/base
        return any(os.path.exists(stem + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES)

    @staticmethod
    def _clean(core_dir: str) -> None:
        """Drop binaries and the manifest of an earlier build (a failed build must not leave them)."""
        stems = [os.path.join(core_dir, *name.split(".")[1:]) for name in COMPILED]
        stems.append(os.path.join(core_dir, GROUP.split(".")[-1] + "__mypyc"))
        for stem in stems:
            for path in glob.glob(stem + ".*.so") + glob.glob(stem + ".*.pyd"):
                os.remove(path)
        manifest = os.path.join(core_dir, MANIFEST)
        if os.path.exists(manifest):
            os.remove(manifest)

    @staticmethod
    def _manifest(core_dir: str, doc: dict[str, object]) -> None:
        os.makedirs(core_dir, exist_ok=True)
        with open(os.path.join(core_dir, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")


# A placeholder, so setuptools knows there are extensions (a platform wheel, `build_ext` runs);
# `BuildNative.run` replaces it with mypyc's.
setup(ext_modules=[Extension(GROUP + "__mypyc", sources=[])], cmdclass={"build_ext": BuildNative})

"""The engine's suites pass on the pure-Python engine too (`OOF_PURE_PYTHON=1`), not only compiled.

The default run uses whatever `pip install` built (mypyc-compiled when a compiler was
there). This test reruns the core suites in a child process with the compiled modules
switched off, so both builds are held to the same tests on every run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import _native

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(not _native.mode().startswith("compiled"), reason="this run is already the pure-Python engine")
def test_the_core_suites_pass_on_the_pure_python_engine() -> None:
    env = {**os.environ, "OOF_PURE_PYTHON": "1"}
    probe = subprocess.run([sys.executable, "-c", "import core.engine; from core import _native; print(_native.mode())"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert probe.stdout.strip().startswith("pure"), probe.stdout
    this = Path(__file__).relative_to(ROOT)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/unit/core",
                          f"--deselect={this}::test_the_core_suites_pass_on_the_pure_python_engine"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout

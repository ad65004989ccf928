"""`oof bench engine` runs end to end on a small stream and reports what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deployments.commands.bench import baseline, synthetic_events


def test_bench_engine_reports_throughput_baseline_ratio_and_memory() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deployments.cli", "bench", "engine", "--events", "3000", "--wallets", "40",
         "--mints", "8"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for label in ("engine:", "best of 2 fresh engines", "baseline:", "ratio:", "moments:", "digest", "gc:",
                  "memory:", "bytes per tracked wallet"):
        assert label in out, out
    assert "DIFFERENT" not in out, out  # repeated runs (and the pure-Python run, when compiled) agree
    from core import _native

    if _native.mode() == "compiled":
        assert "upserts identical" in out, out


def test_synthetic_stream_is_deterministic_and_in_slot_order() -> None:
    a, wallets = synthetic_events(500, 10, 5, seed=3)
    b, _ = synthetic_events(500, 10, 5, seed=3)
    assert a == b and len(wallets) == 10
    assert [e.slot for e in a] == sorted(e.slot for e in a)
    assert baseline(a) == len(a)


def test_bench_engine_counts_the_compiled_engines_instructions_deterministically() -> None:
    import shutil

    import pytest

    from core import _native

    if _native.mode() != "compiled" or shutil.which("valgrind") is None:
        pytest.skip("needs the compiled engine and valgrind")
    argv = [sys.executable, "-m", "deployments.cli", "bench", "engine", "--events", "800", "--wallets", "20",
            "--mints", "6", "--no-memory", "--no-pure", "--repeat", "1", "--instructions"]
    counts = []
    for _ in range(2):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                              cwd=Path(__file__).resolve().parents[3])
        assert done.returncode == 0, done.stderr
        line = next(x for x in done.stdout.splitlines() if x.startswith("instructions:"))
        assert "per event" in line, done.stdout
        counts.append(int(line.split()[1].replace(",", "")))
    assert counts[0] == counts[1] > 0  # the same work counts exactly the same

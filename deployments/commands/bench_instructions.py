"""`oof bench engine --instructions`: the engine's work as an instruction count, not a time.

Wall-clock figures on these shared 2-core machines swing by ±25 % within a session and by
up to 2x between sessions; valgrind's callgrind counts the instructions executed, which is
the same whatever else the machine does (with a fixed hash seed: dict layouts too). The bench re-runs itself once (`--child`, one
engine run) under callgrind with collection switched on only inside the compiled
`Engine.process_batch` and `Engine.flush` (their C entry points), so the count is the
engine's alone: not the stream generation, the baseline, nor the interpreter's start.
Compiled engine only (the pure-Python engine has no such entry points); ~50x slower than
a normal run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["report_instructions", "ENTRY_POINTS"]

ENTRY_POINTS = ("CPyPy_engine___Engine___process_batch", "CPyPy_engine___Engine___flush")
_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")


def report_instructions(args: argparse.Namespace, build: str) -> None:
    if build != "compiled":
        print("instructions: skipped — the engine is not compiled (counting needs its C entry points)")
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("instructions: skipped — valgrind is not installed (apt-get install valgrind)")
        return
    from deployments.commands.bench import child_argv

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        argv = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                *(f"--toggle-collect={name}" for name in ENTRY_POINTS), *child_argv(args, 1)]
        # a fixed hash seed: string hashes (so dict and set layouts) the same in every run
        done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        found = _COLLECTED.search(done.stderr)
        if done.returncode != 0 or found is None:
            print(f"instructions: callgrind run failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
            return
    count = int(found.group(1).replace(",", ""))
    print(f"instructions: {count:,} ({count / 1e9:.2f} G) inside Engine.process_batch/flush = "
          f"{count / args.events:,.0f} per event (callgrind, one run, PYTHONHASHSEED=0: the same for this build "
          f"and stream on any machine state)")

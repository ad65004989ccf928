"""`oof bench engine --instructions`: the engine's work as an instruction count, not a time.

Wall-clock figures on these shared 2-core machines swing by ±25 % within a session and by
up to 2x between sessions; valgrind's callgrind counts the instructions executed, which is
the same whatever else the machine does (with a fixed hash seed: dict layouts too). The
bench re-runs itself once (`--child`, one engine run) under callgrind with collection
switched on only inside the compiled `Engine.process_batch` and `Engine.flush` (their C
entry points), so the count is the engine's alone. Instrumentation itself (callgrind's
~50x slow-down) starts off and is switched on with `callgrind_control -i on` once the child
says it has built the stream and run the baseline (it then waits for a flag file), so the
interpreter's start, the imports and the stream generation run at plain valgrind speed.
Compiled engine only (the pure-Python engine has no such entry points).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["report_instructions", "ENTRY_POINTS"]

ENTRY_POINTS = ("CPyPy_engine___Engine___process_batch", "CPyPy_engine___Engine___flush")
_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")
READY = "instrument: ready"


def report_instructions(args: argparse.Namespace, build: str) -> None:
    if build != "compiled":
        print("instructions: skipped — the engine is not compiled (counting needs its C entry points)")
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None or shutil.which("callgrind_control") is None:
        print("instructions: skipped — valgrind (with callgrind_control) is not installed (apt-get install valgrind)")
        return
    from deployments.commands.bench import child_argv

    with tempfile.TemporaryDirectory() as tmp:
        out, flag = Path(tmp) / "callgrind.out", Path(tmp) / "instrumented"
        argv = [valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                *(f"--toggle-collect={name}" for name in ENTRY_POINTS), *child_argv(args, 1),
                "--instrument-when", str(flag)]
        # a fixed hash seed: string hashes (so dict and set layouts) the same in every run
        done = _run_instrumented(argv, flag)
        found = _COLLECTED.search(done.stderr)
        if done.returncode != 0 or found is None:
            print(f"instructions: callgrind run failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
            return
    count = int(found.group(1).replace(",", ""))
    print(f"instructions: {count:,} ({count / 1e9:.2f} G) inside Engine.process_batch/flush = "
          f"{count / args.events:,.0f} per event (callgrind, one run, PYTHONHASHSEED=0: the same for this build "
          f"and stream on any machine state)")


def wait_for_instrumentation(flag: Path) -> None:
    """In the counted child: say so on stdout, then wait until the parent has switched callgrind on."""
    print(READY, flush=True)
    while not flag.exists():
        time.sleep(0.01)


def _run_instrumented(argv: list[str], flag: Path) -> subprocess.CompletedProcess[str]:
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONHASHSEED": "0"})
    assert child.stdout is not None
    for line in child.stdout:  # the child's report lines up to its READY
        if line.strip() == READY:
            switched = subprocess.run(["callgrind_control", "-i", "on", str(child.pid)],
                                      capture_output=True, text=True, timeout=120, check=False)
            if switched.returncode != 0:
                child.kill()
                child.communicate()
                return subprocess.CompletedProcess(argv, 1, "", f"callgrind_control: {switched.stderr.strip()}")
            flag.touch()
            break
    rest, err = child.communicate()
    return subprocess.CompletedProcess(argv, child.returncode, rest, err)

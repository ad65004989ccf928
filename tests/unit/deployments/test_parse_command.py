"""`oof parse` as a user runs it: a real subprocess over a JSONL file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures import MAINNET


def _oof(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )


def test_parse_prints_one_object_per_fixture_line() -> None:
    rows = (MAINNET / "transactions.jsonl").read_text().splitlines()
    done = _oof("parse", str(MAINNET / "transactions.jsonl"))

    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(out) == len(rows)
    assert [o["signature"] for o in out] == [json.loads(r)["signature"] for r in rows]
    first = out[0]
    assert set(first) >= {"signature", "wallet", "failed", "flows", "trades"}
    assert first["trades"][0]["side"] == "SELL"
    assert first["flows"]["vVe16q1aGVSnZtK8PCXFnsh45VW6HCVrJPKCBSbpump"] == "-5878.070878"
    assert sum(o["failed"] for o in out) == 3


def test_bad_lines_are_reported_per_line_and_the_run_continues(tmp_path: Path) -> None:
    good = (MAINNET / "transactions.jsonl").read_text().splitlines()[0]
    broken = json.loads(good)
    del broken["result"]["meta"]
    src = tmp_path / "mixed.jsonl"
    src.write_text("\n".join([good, "{not json", json.dumps(broken), good]) + "\n")

    done = _oof("parse", str(src))

    assert done.returncode == 1
    assert len(done.stdout.splitlines()) == 2
    assert "line 2: not valid JSON" in done.stderr
    assert "line 3: meta is missing" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    done = _oof("parse", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 1
    assert "cannot read" in done.stderr and "Traceback" not in done.stderr


def test_stdin_and_wallet_override() -> None:
    line = (MAINNET / "transactions.jsonl").read_text().splitlines()[0]
    done = _oof("parse", "-", "--wallet", "GGztQqQ6pCPaJQnNpXBgELr5cs3WwDakRbh1iEMzjgSJ", stdin=line)
    assert done.returncode == 0, done.stderr
    (obj,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert obj["wallet"] == "GGztQqQ6pCPaJQnNpXBgELr5cs3WwDakRbh1iEMzjgSJ"

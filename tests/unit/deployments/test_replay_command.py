"""`oof replay`: a recording in, every moment in its final state out."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

from core.mints import USDC_MINT
from deployments.commands.replay import replay
from tests.fixtures import MAINNET
from tests.scenarios import DAY, World

ROOT = Path(__file__).resolve().parents[3]


def _oof(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deployments.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _world() -> tuple[World, str]:
    w = World()
    alice, tok = w.wallet("alice"), w.token("TOK")
    w.deposit(alice, USDC_MINT, "50000")
    w.buy(alice, tok, 100, "1")
    w.wait(60)
    w.sell(alice, tok, 100, "1")
    w.wait(DAY)
    w.trade(tok, "2")  # S2E crosses
    w.wait(31 * DAY)
    w.heartbeat()  # S2E final, first IDLE period closed
    return w, alice


def _recording(path: Path, w: World, shuffle: bool = True) -> Path:
    rows = []
    for i, tx in enumerate(w.txs):  # every accepted wrapping: bare, RPC response, fixture row
        rows.append([tx.result, {"jsonrpc": "2.0", "id": i, "result": tx.result},
                     {"signature": tx.signature, "kind_hint": "swap", "result": tx.result}][i % 3])
    if shuffle:
        random.Random(4).shuffle(rows)  # replay runs in slot order whatever the file order
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_replay_writes_each_moment_once_in_its_final_state(tmp_path: Path) -> None:
    w, alice = _world()
    src, out = _recording(tmp_path / "rec.jsonl", w), tmp_path / "moments.jsonl"

    done = _oof("replay", str(src), "--out", str(out), "--in-process")

    assert done.returncode == 0, done.stderr
    moments = [json.loads(line) for line in out.read_text().splitlines()]
    by_kind = {m["kind"]: m for m in moments}
    assert set(by_kind) == {"S2E", "IDLE_YIELD"}
    s2e = by_kind["S2E"]
    assert s2e["status"] == "final" and s2e["wallet"] == alice
    assert {"id", "kind", "wallet", "mint", "sig_ref", "slot_ref", "pct", "usd_value", "severity", "status",
            "explain"} <= set(s2e)
    assert isinstance(s2e["usd_value"], str) and s2e["usd_value"] == "100.00000000"
    assert f"replayed {len(w.txs)} transactions" in done.stderr
    assert "S2E 1 (0 open)" in done.stderr and "IDLE_YIELD 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreadable_lines_are_reported_and_counted_and_the_run_goes_on(tmp_path: Path) -> None:
    w, _ = _world()
    src = _recording(tmp_path / "rec.jsonl", w, shuffle=False)
    broken = dict(w.txs[1].result, meta=None)
    lines = src.read_text().splitlines()
    lines[1] = json.dumps(broken)
    lines.insert(3, "{not json")
    src.write_text("\n".join(lines) + "\n")
    err = io.StringIO()

    code = replay(src, tmp_path / "out.jsonl", err=err)

    assert code == 1
    report = err.getvalue()
    assert "line 2: meta is missing" in report
    assert "line 4: not valid JSON" in report
    assert "(2 unreadable lines)" in report


def test_wallets_and_shards_options(tmp_path: Path) -> None:
    w, alice = _world()
    src = _recording(tmp_path / "rec.jsonl", w)
    one, four, none = tmp_path / "one.jsonl", tmp_path / "four.jsonl", tmp_path / "none.jsonl"
    assert replay(src, one, err=io.StringIO()) == 0
    assert replay(src, four, shards=4, err=io.StringIO()) == 0
    assert replay(src, none, wallets=[w.market[0]], err=io.StringIO()) == 0
    assert one.read_text() == four.read_text() != ""
    assert none.read_text() == ""
    assert alice in one.read_text()


def test_replay_of_the_mainnet_fixtures(tmp_path: Path) -> None:
    err = io.StringIO()
    assert replay(MAINNET / "transactions.jsonl", tmp_path / "out.jsonl", err=err) == 0
    assert "replayed 38 transactions (0 unreadable lines)" in err.getvalue()
    assert "stale 0" in err.getvalue()

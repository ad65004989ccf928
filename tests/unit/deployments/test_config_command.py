"""`oof config check` and `load_or_exit`: masked output on success, one readable message and exit 2 on failure."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.settings import ENV_ALIASES
from deployments.commands import config
from deployments.settings_loader import load_or_exit

ROOT = Path(__file__).resolve().parents[3]
BAD_ENV = {
    "OOF_DATABASE__POOL_MAX": "abc",
    "OOF_SOLANA__RPC_WS_URL": "http://api.mainnet-beta.solana.com",
    "DATABASE_URL": "postgresql://oof:hunter2@db/oof",
}


def check(*argv: str, environ: dict[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="oof config")
    config.add_parser(parser)
    args = parser.parse_args(["check", *argv])
    return int(args.handler(args, environ))


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without any OOF setting, plus `extra`: a copy, os.environ is untouched."""
    kept = {k: v for k, v in os.environ.items() if not k.upper().startswith("OOF_") and k not in ENV_ALIASES}
    return {**kept, "PYTHONPATH": str(ROOT), **extra}


def test_check_prints_masked_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    code = check(environ={"DATABASE_URL": "postgresql://oof:hunter2@db/oof", "OOF_JUPITER__API_KEY": "hunter2"})

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "hunter2" not in out
    effective = yaml.safe_load(out)
    assert effective["database"]["url"] == "postgresql://oof:****@db/oof"
    assert effective["jupiter"]["api_key"] == "**********"
    assert effective["database"]["pool_max"] == 10


def test_check_json_with_extra_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "local.yaml"
    extra.write_text("pipeline: {shard_count: 16}\n", encoding="utf-8")

    code = check("--json", "--config", str(extra), environ={})

    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["pipeline"]["shard_count"] == 16


def test_check_reports_every_problem_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = check(environ=BAD_ENV)

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "configuration has 2 problem(s):"
    assert any(line.startswith("  - database.pool_max:") and "OOF_DATABASE__POOL_MAX" in line for line in lines)
    assert any(line.startswith("  - solana.rpc_ws_url:") for line in lines)
    assert "hunter2" not in err


def test_load_or_exit_exits_2_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_or_exit({"OOF_CONFIG": str(tmp_path / "nope.yaml")})

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("configuration has 1 problem(s):")
    assert "nope.yaml: file not found" in err


def test_load_or_exit_returns_settings() -> None:
    settings = load_or_exit({"OOF_API__PORT": "8123"})
    assert settings.api.port == 8123


def test_bad_environment_in_a_real_process_has_no_traceback() -> None:
    argv = [sys.executable, "-m", "deployments.cli", "config", "check"]

    done = subprocess.run(
        argv, env=clean_environ(**BAD_ENV), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("configuration has 2 problem(s):\n")
    assert "database.pool_max" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout

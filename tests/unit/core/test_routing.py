"""Stable wallet → shard routing."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from core.routing import shard_for
from tests.scenarios import address


def test_routing_is_in_range_and_single_shard_is_zero() -> None:
    for i in range(200):
        wallet = address(f"w{i}")
        assert shard_for(wallet, 1) == 0
        assert 0 <= shard_for(wallet, 7) < 7


def test_routing_is_the_same_in_another_process() -> None:
    wallets = [address(f"w{i}") for i in range(20)]
    here = [shard_for(w, 16) for w in wallets]
    code = (
        "import sys; from core.routing import shard_for; "
        f"print([shard_for(w, 16) for w in {wallets!r}])"
    )
    env_seed = {"PYTHONHASHSEED": "12345"}  # a different str hash salt must not matter
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**env_seed, "PATH": ""}, cwd=".").stdout.strip()
    assert there == str(here)


def test_routing_spreads_wallets() -> None:
    counts = Counter(shard_for(address(f"w{i}"), 4) for i in range(4_000))
    assert all(800 < n < 1_200 for n in counts.values())


def test_bad_shard_count() -> None:
    with pytest.raises(ValueError):
        shard_for("x", 0)

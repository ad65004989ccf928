"""`Feed` fills in live transactions' block times, asking `oof:fetch` once per slot, not per transaction."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from actors import feed as feed_module
from actors.feed import Feed
from actors.sources import SourceSpec
from core.settings import SolanaSettings
from streams.base import RawTx


class _FakeFetch:
    """`oof:fetch` stand-in: `block_times.remote(slots)` answers from `times` and records what was asked."""

    def __init__(self, times: dict[int, int | None]) -> None:
        self.times, self.asked = times, []
        self.block_times = SimpleNamespace(remote=self._block_times)

    async def _block_times(self, slots: list[int]) -> dict[int, int | None]:
        self.asked.append(list(slots))
        return {s: self.times.get(s) for s in slots}


def _tx(signature: str, slot: int) -> RawTx:
    return RawTx(signature, slot, {"slot": slot, "blockTime": None, "transaction": {"signatures": [signature]}})


@pytest.fixture
def live_feed(monkeypatch: pytest.MonkeyPatch) -> tuple[Feed, _FakeFetch]:
    metric = SimpleNamespace(inc=lambda *a, **k: None, set=lambda *a, **k: None)
    monkeypatch.setattr(feed_module, "pipeline_metrics", lambda: SimpleNamespace(tx_in=metric))
    solana = SolanaSettings(source="helius", rpc_http_url="http://127.0.0.1:1/", rpc_ws_url="ws://127.0.0.1:1/")
    fetch = _FakeFetch({5: 1_750_000_000, 6: 1_750_000_001, 7: None})
    counts: dict[str, Any] = {k: 0 for k in ("tx_in", "duplicates", "fetched", "not_found", "external_prices")}
    return Feed(SourceSpec("settings", solana=solana), 100, None, fetch, counts), fetch


async def test_each_slot_is_asked_once(live_feed: tuple[Feed, _FakeFetch]) -> None:
    feed, fetch = live_feed
    first = await feed.complete([_tx("a", 5), _tx("b", 5), _tx("c", 6)])
    assert [r["blockTime"] for r in first] == [1_750_000_000, 1_750_000_000, 1_750_000_001]
    for sig in ("d", "e"):  # a live source emits each notification on its own
        (again,) = await feed.complete([_tx(sig, 6)])
        assert again["blockTime"] == 1_750_000_001
    assert fetch.asked == [[5, 6]]


async def test_a_slot_without_a_time_is_asked_again(live_feed: tuple[Feed, _FakeFetch]) -> None:
    feed, fetch = live_feed
    (first,) = await feed.complete([_tx("a", 7)])
    assert first["blockTime"] is None
    fetch.times[7] = 1_750_000_002  # the node has the block now
    (second,) = await feed.complete([_tx("b", 7)])
    assert second["blockTime"] == 1_750_000_002
    assert fetch.asked == [[7], [7]]

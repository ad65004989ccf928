"""An analyze job's market prices without Ray: `market_items` against a local Birdeye endpoint, and a
`JobRun` (local JSON-RPC node, local Birdeye, an in-memory lane) fetching in parts and merging the
market's prices into each, to exactly what the whole history with those prices gives."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

import streams.storage
from actors.analyze_job import JobRun
from actors.analyze_market import MarketPrices, market_items
from core.engine import Engine
from core.external_prices import is_external
from core.models import MomentKind
from core.settings import HistoryPricesSettings
from core.thresholds import Thresholds
from streams.localnode import LocalRpcServer
from streams.localnode.birdeye import LocalBirdeye
from streams.rpc import RpcClient
from streams.storage import Job, JobStatus
from tests.unit.core.test_market_history import _bag_holder

DAY = 86_400


def _crash(mint: str, bought_at: int) -> dict[str, list[tuple[int, str, str, str, str]]]:
    """TOK's market: $1 until an hour after the buy, then $0.05 for good (15-minute candles)."""
    start = (bought_at - 2 * DAY) // 900 * 900
    return {mint: [(u, *(("1", "1.02", "0.98", "1") if u < bought_at + 3_600 else ("0.05",) * 4))
                   for u in range(start, bought_at + 10 * DAY, 900)]}


def _market(base_url: str, **extra: Any) -> MarketPrices:
    settings = HistoryPricesSettings(provider="birdeye", base_url=base_url, api_key="k",  # type: ignore[arg-type]
                                     **extra)
    return MarketPrices(settings, Thresholds())


def _moments(items: Sequence[Any], wallet: str) -> dict[str, Any]:
    engine = Engine(tracked=[wallet])
    return {m.id: m for m in engine.process_batch(items) + engine.flush()}


async def test_market_items_merge_the_market_into_the_history_and_say_what_was_priced() -> None:
    w, alice, tok, bought_at = _bag_holder()
    raws = w.raws()
    async with LocalBirdeye(_crash(tok, bought_at), api_key="k") as bird:
        items, progress = await market_items(raws, [alice], _market(bird.base_url))
    views = [i for i in items if not isinstance(i, dict)]
    assert [i for i in items if isinstance(i, dict)] == raws
    assert progress == {"provider": "birdeye", "candle": "15m", "mints": 1, "status": "priced", "mints_priced": 1,
                        "mints_refused": 0, "mints_skipped": 0, "candles": 8 * 96 + 5, "prices": len(views),
                        "malformed": 0, "requests": 1}
    assert {m.kind for m in _moments(items, alice).values()} == {MomentKind.BHD, MomentKind.RUG}

    off, progress = await market_items(raws, [alice], MarketPrices(HistoryPricesSettings(), Thresholds()))
    assert off == raws and progress == {"provider": "none", "status": "off"}
    assert _moments(off, alice) == {}


async def test_a_failing_provider_leaves_the_job_its_own_prices_and_says_so() -> None:
    w, alice, tok, bought_at = _bag_holder()
    raws = w.raws()
    async with LocalBirdeye(_crash(tok, bought_at), api_key="k") as bird:
        bird.fail_next(3, 503)
        items, down = await market_items(raws, [alice], _market(bird.base_url, max_attempts=3))
        bird.refuse(tok)
        refused, partial = await market_items(raws, [alice], _market(bird.base_url))
        skipped, budget = await market_items(raws, [alice], _market(bird.base_url, max_requests_per_job=1,
                                                                      margin_s=7 * DAY, candle="15m"))
    assert items == raws and down["status"] == "unavailable" and down["requests"] == 3
    assert down["error"].startswith("birdeye is not answering correctly") and "503" not in down["error"]
    assert refused == raws and partial["status"] == "partial" and partial["mints_refused"] == 1
    assert skipped == raws and budget["status"] == "partial" and budget["mints_skipped"] == 1  # 15 days: 2 requests


class _Lane:
    """The lane's contract in memory: parts kept in a dict, `run` an engine over them in order."""

    def __init__(self) -> None:
        self.parts: dict[int, list[Any]] = {}
        self.ran: list[list[Any]] = []
        self.moments: dict[str, Any] = {}

    def store(self, items: list[Any]) -> int:
        self.parts[len(self.parts)] = list(items)
        return len(self.parts) - 1

    async def load(self, part: int) -> list[Any]:
        return self.parts[part]

    async def run(self, parts: list[int], wallets: Sequence[str], on_status: Any) -> dict[str, Any]:
        self.ran = [self.parts[p] for p in parts]
        items = [item for part in self.ran for item in part]
        self.moments = _moments(items, wallets[0])
        external = sum(1 for i in items if not isinstance(i, dict) and is_external(i.wallet))
        return {"tx_in": len(items) - external, "external_prices": external, "trades": 1, "last_slot": 0}


class _Forgetful:
    """The node's answers with one transaction's `blockTime` left out (as a node may): asked for again."""

    def __init__(self, rpc: RpcClient, signature: str) -> None:
        self.rpc, self.signature, self.block_times = rpc, signature, 0

    async def get_transactions(self, signatures: Sequence[str], encoding: str = "json") -> dict[str, Any]:
        found = await self.rpc.get_transactions(signatures, encoding)
        return {s: {**r, "blockTime": None} if s == self.signature and r else r for s, r in found.items()}

    async def get_block_time(self, slot: int) -> int | None:
        self.block_times += 1
        return await self.rpc.get_block_time(slot)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rpc, name)


class _Pool:
    @asynccontextmanager
    async def acquire(self) -> Any:
        yield None


@pytest.mark.parametrize("part_size", [1, 2, 500])
async def test_a_job_fetches_in_parts_and_merges_the_market_into_each(part_size: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    w, alice, tok, bought_at = _bag_holder()
    reports: list[dict[str, Any]] = []

    async def report(conn: Any, job_id: str, progress: dict[str, Any], **kw: Any) -> None:
        reports.append(dict(progress))

    async def counts(conn: Any, wallets: Sequence[str]) -> dict[str, int]:
        return {}

    monkeypatch.setattr(streams.storage, "update_job_progress", report)
    monkeypatch.setattr(streams.storage, "moment_counts", counts)
    lane, raws = _Lane(), w.raws()
    async with LocalRpcServer(raws) as node, RpcClient(node.http_url) as rpc, \
            LocalBirdeye(_crash(tok, bought_at), api_key="k") as bird:
        market = _market(bird.base_url)
        node_results = await rpc.get_transactions([r["transaction"]["signatures"][0] for r in raws])
        expected, _ = await market_items(list(node_results.values()), [alice], market)
        job = Job("job-1", "user-1", (alice,), JobStatus.RUNNING)
        forgetful = _Forgetful(rpc, w.txs[1].signature)  # the buy: its time places every price after it
        status = await JobRun(job, pool=_Pool(), rpc=forgetful, lane=lane, limit=100, heartbeat_s=60,
                              market=market, part_size=part_size).run()
    assert status is JobStatus.DONE and forgetful.block_times == 1
    assert [item for part in lane.ran for item in part] == expected  # the same items as the whole, merged
    assert len(lane.ran) == -(-len(raws) // part_size) + 1  # one part more: the prices after the last transaction
    assert {m.kind for m in lane.moments.values()} == {MomentKind.BHD, MomentKind.RUG}
    phases = [r["phase"] for r in reports if "phase" in r]
    assert phases == ["listing", "fetching", "pricing", "detecting", "done"]
    market_report = next(r["market"] for r in reports if "market" in r)
    done = reports[-1]
    assert market_report["status"] == "priced" and done["prices_processed"] == market_report["prices"]
    assert done["fetched"] == done["transactions"] == done["processed"] == len(raws) and done["not_found"] == 0

"""`PricePoller`: which mints it asks Jupiter about, and how the prices become views of the stream's slot."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from actors.price_poll import PricePoller
from core.external_prices import ORACLE_WALLET
from core.mints import SOL_MINT, USDC_MINT, USDT_MINT
from streams.jupiter import JupiterClient
from streams.localnode.jupiter import LocalJupiter

FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 2}


def poller(client: object, watched: set[str], max_mints: int = 500) -> PricePoller:
    return PricePoller(client, lambda: watched, interval_s=60, max_mints=max_mints)


def test_sol_first_then_watched_mints_without_stablecoins() -> None:
    p = poller(None, {"B", "A", USDC_MINT, USDT_MINT, SOL_MINT})
    assert p.choose() == [SOL_MINT, "A", "B"]


def test_more_mints_than_the_budget_are_polled_in_turn() -> None:
    watched = {f"M{i}" for i in range(10)}
    p = poller(None, watched, max_mints=4)  # SOL + 3 per poll
    polls = [p.choose() for _ in range(4)]
    assert all(chosen[0] == SOL_MINT and len(chosen) == 4 for chosen in polls)
    assert set().union(*(set(c[1:]) for c in polls[:4])) == watched  # every mint within ceil(10 / 3) polls


async def test_polled_prices_wait_latest_per_mint_and_become_views_of_the_given_slot() -> None:
    async with LocalJupiter({SOL_MINT: "150", "Tok": "0.5", USDC_MINT: "1"}) as jup:
        async with JupiterClient(jup.base_url, **FAST) as client:
            p = poller(client, {"Tok", USDC_MINT, "Unpriced"})
            assert await p.poll_once() == 2
            jup.prices["Tok"] = "0.4"
            assert await p.poll_once() == 2
    views = p.take(1234)
    assert [(v.trades[0].mint, v.trades[0].price_usd, v.slot, v.wallet) for v in views] == [
        (SOL_MINT, D(150), 1234, ORACLE_WALLET), ("Tok", D("0.4"), 1234, ORACLE_WALLET)]  # the latest Tok price
    assert len({v.signature for v in views}) == 2
    assert p.take(1235) == [] and p.stats == {"polls": 2, "poll_errors": 0, "prices": 4, "offered": 2}
    assert all(USDC_MINT not in seen.ids for seen in jup.requests)


async def test_a_failed_poll_is_counted_and_keeps_what_was_pending() -> None:
    async with LocalJupiter({SOL_MINT: "150"}) as jup:
        async with JupiterClient(jup.base_url, **FAST) as client:
            p = poller(client, set())
            await p.poll_once()
            jup.fail_next(2, 503)
            assert await p.poll_once() == 0
    assert p.stats["poll_errors"] == 1 and [v.trades[0].price_usd for v in p.take(9)] == [D(150)]


async def test_polling_goes_on_after_an_empty_answer_and_after_a_crashing_poll() -> None:
    class Flaky:
        calls = 0

        async def prices(self, mints: list[str]) -> dict[str, object]:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("a bug in one poll")
            return {}  # nothing priced

    client, stop = Flaky(), asyncio.Event()
    task = asyncio.create_task(PricePoller(client, set, interval_s=0.01, max_mints=5).run(stop))
    for _ in range(200):
        if client.calls >= 4:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert client.calls >= 4

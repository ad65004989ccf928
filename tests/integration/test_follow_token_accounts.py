"""Live sources follow their wallets' token accounts: a transfer *into* a wallet is seen.

A plain SPL transfer into an existing token account names the account, never its owner, so
`accountInclude` / `mentions` of the owner alone miss it (the local node matches account
keys exactly as a real one does). Built with the scenario toolkit: the tracked wallet buys a
token (its token account appears in `postTokenBalances`), then another wallet sends it some.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio

from core.mints import USDC_MINT
from streams.base import TokenAccount
from streams.localnode import LocalRpcServer
from streams.rpc import RpcClient
from streams.sources import LivePolicy
from streams.sources._live import LiveSource
from tests.rpcserver.live import FAST as QUICK
from tests.rpcserver.live import live_source
from tests.rpcserver.running import Running
from tests.scenarios.gifts import GiftStory

FAST = replace(QUICK, follow_delay_s=0.05)
KINDS = ["helius", "logs"]


@pytest_asyncio.fixture
async def node() -> AsyncIterator[LocalRpcServer]:
    async with LocalRpcServer([]) as server:
        yield server


@pytest_asyncio.fixture
async def story(node: LocalRpcServer) -> GiftStory:
    story = GiftStory()
    await node.publish(story.b_buy.result)  # B's tokens, from before any source starts
    return story


def make(kind: str, node: LocalRpcServer, rpc: RpcClient, wallets: Sequence[str], **options: Any) -> LiveSource:
    options.setdefault("policy", FAST)
    return live_source(kind, node, rpc, wallets, **options)


async def subscribed(node: LocalRpcServer, kind: str, addresses: int) -> None:
    """Helius: one subscription at the start, one more per `follow`; logs: one per address."""
    if kind == "helius":
        await node.wait_for_subscriptions(1 if addresses == 1 else 2, "transaction")
    else:
        await node.wait_for_subscriptions(addresses, "logs")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_transfer_into_a_followed_token_account_is_emitted_once(
    kind: str, node: LocalRpcServer, rpc: RpcClient, story: GiftStory
) -> None:
    # Arrange
    saved = []

    async def save(accounts: Sequence[TokenAccount]) -> None:
        saved.extend(accounts)

    async with Running(make(kind, node, rpc, [story.a], on_follow=save)) as run:
        await subscribed(node, kind, 1)

        # Act: the gift lands before the account is subscribed (backfilled from the buy's
        # slot), the later one after (live).
        buy = await node.publish(story.buy.result)
        gift = await node.publish(story.gift.result)
        await run.received({buy, gift})
        await subscribed(node, kind, 3)  # A, its TOKEN and USDC accounts
        later = await node.publish(story.gift_later.result)
        await run.received({later})
        await asyncio.sleep(0.05)  # room for anything that should not come

    # Assert
    assert sorted(run.signatures) == sorted([buy, gift, later])  # each once
    buy_slot = node.ledger.get(buy).slot  # type: ignore[union-attr]
    usdc_account = next(t.account for t in saved if t.account != story.account)  # what A paid with
    assert sorted(saved, key=lambda t: t.account != story.account) == [
        TokenAccount(story.account, story.a, story.token, buy_slot),
        TokenAccount(usdc_account, story.a, USDC_MINT, buy_slot),
    ]
    assert run.source.followed.keys() == {story.account, usdc_account}
    assert run.source.stats.reconnects == 0  # one more subscription, no new connection


@pytest.mark.parametrize("kind", KINDS)
async def test_without_following_a_transfer_into_the_token_account_is_missed(
    kind: str, node: LocalRpcServer, rpc: RpcClient, story: GiftStory
) -> None:
    policy = LivePolicy(backoff_initial_s=0.02, follow_token_accounts=False)
    async with Running(make(kind, node, rpc, [story.a], policy=policy)) as run:
        await subscribed(node, kind, 1)
        buy = await node.publish(story.buy.result)
        await run.received({buy})
        await node.publish(story.gift.result)
        await asyncio.sleep(0.3)

    assert run.signatures == [buy]  # the gap this feature closes


@pytest.mark.parametrize("kind", KINDS)
async def test_a_restart_follows_saved_accounts_from_their_since_slot(
    kind: str, node: LocalRpcServer, rpc: RpcClient, story: GiftStory
) -> None:
    # Arrange: everything happened while the source was down; the account was saved at the buy.
    buy_slot = node.ledger.head + 2
    buy = await node.publish(story.buy.result, slot=buy_slot)
    gift = await node.publish(story.gift.result)
    known = [TokenAccount(story.account, story.a, story.token, buy_slot + 1)]  # followed from after the buy

    # Act
    async with Running(make(kind, node, rpc, [story.a], token_accounts=known)) as run:
        await run.received({gift})
        await subscribed(node, kind, 2 if kind == "logs" else 1)
        later = await node.publish(story.gift_later.result)
        await run.received({later})
        await asyncio.sleep(0.05)

    # Assert: the account's history from its since slot on, nothing before it (the buy is the
    # wallet's own history, and the wallet has no cursor: live from its first subscription)
    assert sorted(run.signatures) == sorted([gift, later])
    assert buy not in run.signatures


@pytest.mark.parametrize("kind", KINDS)
async def test_token_accounts_held_before_the_start_are_asked_of_the_node_and_followed(
    kind: str, node: LocalRpcServer, rpc: RpcClient, story: GiftStory
) -> None:
    # Arrange: A bought before the source started (no cursor, nothing followed yet)
    buy = await node.publish(story.buy.result)

    # Act
    async with Running(make(kind, node, rpc, [story.a])) as run:
        await subscribed(node, kind, 3)  # A, then its TOKEN and USDC accounts from getTokenAccountsByOwner
        gift = await node.publish(story.gift.result)
        await run.received({gift})
        await asyncio.sleep(0.05)

    # Assert: the gift arrives although A never transacted since the start; A's history stays history
    assert run.signatures == [gift] and buy not in run.signatures
    assert story.account in run.source.followed
    assert node.requests["getTokenAccountsByOwner"] == 2  # both token programs, once

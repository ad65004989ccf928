"""A transfer into a wallet that names only its token account (live sources must follow it)."""

from __future__ import annotations

from streams.codec import tx_account_keys
from tests.scenarios.chain import Encoding
from tests.scenarios.world import World

__all__ = ["GiftStory"]


class GiftStory:
    """A buys TOKEN (opening its token account), then B sends A some of it, twice.

    `b_buy` (B's tokens) comes first; publish it before a source starts."""

    def __init__(self, encoding: Encoding = "json") -> None:
        world = World(encoding=encoding)
        self.world = world
        self.a, self.b = world.wallet("a"), world.wallet("b")
        self.token = world.token("TOKEN")
        self.b_buy = world.buy(self.b, self.token, 100, "0.5")
        self.buy = world.buy(self.a, self.token, 100, "0.5")
        self.gift = world.transfer(self.b, self.a, self.token, 10, to_account_only=True)
        self.gift_later = world.transfer(self.b, self.a, self.token, 5, to_account_only=True)
        self.account = world.ledger.token_accounts[(self.a, self.token)]
        assert self.a not in tx_account_keys(self.gift.result)  # the point: the owner is not named
        assert self.account in tx_account_keys(self.gift.result)

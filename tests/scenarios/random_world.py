"""A random but well-formed world: a few traders, tokens and market wallets over some weeks.

Used by the property tests: every kind of transaction the toolkit can write (USDC-, SOL-
and token-quoted trades, deposits, transfers out, failed transactions, several
transactions in one slot) along volatile price paths, so every detector has a chance.
"""

from __future__ import annotations

import random
from decimal import Decimal

from core.mints import SOL_MINT, USDC_MINT
from tests.scenarios.world import DAY, HOUR, World

__all__ = ["random_world"]


def random_world(seed: int, steps: int = 40, traders: int = 3, tokens: int = 3) -> World:
    rng = random.Random(seed)
    w = World()
    wallets = [w.wallet(f"trader{i}") for i in range(traders)]
    mints = [w.token(f"T{i}", decimals=rng.choice((6, 9))) for i in range(tokens)]
    price = {m: Decimal(rng.choice(("0.5", "1", "2", "10"))) for m in mints}
    sol = Decimal(150)
    w.sol_price(sol)
    held: dict[tuple[str, str], int] = {}

    def walk(mint: str) -> Decimal:
        factor = Decimal(rng.choice(("0.1", "0.5", "0.7", "0.9", "1", "1.1", "1.3", "1.6", "3")))
        price[mint] = max(Decimal("0.001"), (price[mint] * factor).quantize(Decimal("0.001")))
        return price[mint]

    for _ in range(steps):
        w.wait(rng.choice((1, 30, 90, HOUR, 6 * HOUR, DAY, 3 * DAY)))
        in_one_slot = rng.random() < 0.3
        actions = rng.randint(2, 4) if in_one_slot else 1
        with (w.same_slot() if in_one_slot else _Nothing()):
            for _ in range(actions):
                _act(rng, w, wallets, mints, price, held, walk, sol)
    w.wait(rng.choice((HOUR, 8 * DAY, 31 * DAY)))
    w.heartbeat()
    return w


def _act(rng, w, wallets, mints, price, held, walk, sol) -> None:  # type: ignore[no-untyped-def]
    wallet, mint = rng.choice(wallets), rng.choice(mints)
    roll = rng.random()
    qty = rng.choice((10, 50, 100, 400))
    have = held.get((wallet, mint), 0)
    if roll < 0.3:
        w.trade(mint, walk(mint), qty=rng.choice((1, 5)), by=rng.randrange(4))
    elif roll < 0.5:
        if _affordable(w, wallet, USDC_MINT, Decimal(qty) * price[mint]):
            w.buy(wallet, mint, qty, price[mint])
            held[(wallet, mint)] = have + qty
    elif roll < 0.6:
        sol_amount = (Decimal(qty) * price[mint] / sol).quantize(Decimal("0.000001"))
        if sol_amount > 0 and _affordable(w, wallet, SOL_MINT, sol_amount + 1):
            w.swap(wallet, (SOL_MINT, sol_amount), (mint, qty))
            held[(wallet, mint)] = have + qty
    elif roll < 0.75 and have:
        sell = min(have, qty)
        w.sell(wallet, mint, sell, price[mint])
        held[(wallet, mint)] = have - sell
    elif roll < 0.82 and have:
        other = rng.choice([m for m in mints if m != mint])
        give = min(have, qty)
        get = max(1, int(Decimal(give) * price[mint] / price[other]))
        w.swap(wallet, (mint, give), (other, get))
        held[(wallet, mint)] = have - give
        held[(wallet, other)] = held.get((wallet, other), 0) + get
    elif roll < 0.88:
        w.deposit(wallet, rng.choice((USDC_MINT, SOL_MINT)), rng.choice(("500", "5000", "20")))
    elif roll < 0.92 and have:
        w.transfer(wallet, w.market[1], mint, min(have, 5))
        held[(wallet, mint)] = have - min(have, 5)
    elif roll < 0.96:
        w.swap(wallet, (USDC_MINT, 1), (mint, 1), failed=True)
    else:
        w.sol_price(sol + rng.choice((-5, 0, 5)))


def _affordable(w: World, wallet: str, mint: str, amount: Decimal) -> bool:
    return w.ledger.balance(wallet, mint) >= w.ledger.raw(mint, amount.quantize(Decimal(10) ** -w.ledger.decimals[mint]))


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

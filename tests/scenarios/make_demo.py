"""Write `configs/recordings/demo.jsonl`: the bundled demo recording (rerunnable, deterministic).

    python -m tests.scenarios.make_demo [--out PATH] [--check]

About six weeks of one small market in real `getTransaction` JSON (`json` and
`jsonParsed`, built by the scenario toolkit), with five traders who each make one of the
five mistakes, among market wallets whose trades move the prices:

- alice sells BONK just before it runs up 80 %            → S2E
- bob buys WIF near the top and holds through a -45 % dip → BHD
- carol buys JUP 3 % above what everyone else paid then   → BAD_ROUTE
- dave deposits USDC and leaves it idle for 30 days      → IDLE_YIELD
- erin buys RUGME, which collapses 95 % and stays there  → RUG (and a BHD on the way down)

plus background noise: market trades of every token, SOL/USDC swaps, failed transactions.
`--check` runs the in-process engine over the result and prints the moments by kind.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import orjson

from core.mints import SOL_MINT, USDC_MINT
from tests.scenarios.world import DAY, HOUR, World

__all__ = ["build_demo", "main", "DEMO_PATH"]

DEMO_PATH = Path(__file__).resolve().parents[2] / "configs" / "recordings" / "demo.jsonl"
_SEED = 20_251_126


def build_demo() -> World:
    rng = random.Random(_SEED)
    w = World()
    alice, bob, carol, dave, erin = (w.wallet(n) for n in ("alice", "bob", "carol", "dave", "erin"))
    bonk, wif, jup, rug = w.token("BONK", 5), w.token("WIF", 6), w.token("JUP", 6), w.token("RUGME", 6)
    price = {bonk: Decimal("0.00002"), wif: Decimal("2.5"), jup: Decimal("0.8"), rug: Decimal("0.01")}
    sol = Decimal(150)

    def small(p: Decimal) -> int:
        """A ~$10 market trade (sub-cent prices have 8 decimals: then lots of 100 keep USDC at 6)."""
        return max(100, int(Decimal(10) / p / 100) * 100) if p < Decimal("0.01") else max(1, int(Decimal(10) / p))

    def jiggle(p: Decimal) -> Decimal:
        moved = p * Decimal(rng.choice(("0.98", "0.99", "1", "1.01", "1.02")))
        return moved.quantize(Decimal("1E-8") if p < Decimal("0.01") else Decimal("1E-6"))

    def sol_tick() -> None:  # market wallet 4 buys and sells 1 SOL in turn: SOL's price, no idle SOL
        nonlocal sol
        sol = (sol * Decimal(rng.choice(("0.99", "1", "1.01")))).quantize(Decimal("0.01"))
        if len(w.txs) % 2:
            w.sell(w.market[4], SOL_MINT, 1, sol)
        else:
            w.sol_price(sol)

    def noise(n: int, skip: tuple[str, ...] = ()) -> None:
        for _ in range(n):
            w.wait(rng.choice((20, 45, 90, 300, 900)))
            roll = rng.random()
            if roll < 0.15:
                sol_tick()
            elif roll < 0.2:
                w.heartbeat()
            else:
                mint = rng.choice([m for m in price if m not in skip and m != rug])  # RUGME: only the story
                p = jiggle(price[mint])
                w.trade(mint, p, qty=small(p), by=rng.randrange(4))

    sol_tick()
    noise(20)
    # dave: 40,000 USDC arrives and sits (first seen now: his 30-day period starts here)
    w.deposit(dave, USDC_MINT, "40000")
    noise(20)
    # alice: buys 50M BONK, sells them a day later; BONK then runs up 80 %
    w.buy(alice, bonk, 50_000_000, "0.00002")
    noise(15, skip=(bonk,))
    w.wait(DAY)
    w.sell(alice, bonk, 50_000_000, "0.000021")
    for step in ("0.000024", "0.00003", "0.000036", "0.000038"):
        w.wait(HOUR * 6)
        w.trade(bonk, step, qty=small(Decimal(step)))
        price[bonk] = Decimal(step)
        noise(4, skip=(bonk,))
    # bob: buys 400 WIF at 2.5, WIF slides to 1.35
    w.buy(bob, wif, 400, "2.5")
    for step in ("2.3", "2.0", "1.7", "1.35"):
        w.wait(HOUR * 4)
        w.trade(wif, step, qty=small(Decimal(step)))
        price[wif] = Decimal(step)
        noise(4, skip=(wif,))
    # carol: three others trade JUP at 0.80 around her 5,000 JUP buy at 0.824
    w.wait(HOUR)
    for dt, who in ((0, 0), (20, 1), (20, None), (15, 2), (30, 3)):
        w.wait(dt)
        if who is None:
            w.buy(carol, jup, 5_000, "0.824")
        else:
            w.trade(jup, "0.8", qty=small(Decimal("0.8")), by=who)
    w.wait(90)
    w.heartbeat()
    noise(20, skip=(rug,))
    # erin: buys 5,000 RUGME at 0.01, it pumps, then collapses for good
    w.buy(erin, rug, 5_000, "0.01")
    w.wait(HOUR)
    w.trade(rug, "0.012", qty=small(Decimal("0.012")))
    w.wait(HOUR * 3)
    w.trade(rug, "0.0006", qty=small(Decimal("0.0006")))
    price[rug] = Decimal("0.0006")
    w.wait(DAY + HOUR)
    w.trade(rug, "0.0005", qty=small(Decimal("0.0005")))
    noise(30)
    # a month later: dave's first idle period closes; windows of the others close too
    w.wait(days=25)
    noise(60)
    w.wait(days=3)
    w.sell(bob, wif, 100, price[wif])
    w.swap(dave, (USDC_MINT, 100), (SOL_MINT, (Decimal(100) / sol).quantize(Decimal("1E-9"))), failed=True)
    noise(40)
    return w


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_PATH)
    parser.add_argument("--check", action="store_true", help="print the moments the engine finds")
    args = parser.parse_args(argv)
    world = build_demo()
    raws = world.raws()
    raws.sort(key=lambda r: r["slot"])  # already in slot order; recordings are oldest first
    args.out.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in raws))
    print(f"{args.out}: {len(raws)} transactions, {len(world.traders)} traders")
    if args.check:
        run = world.run()
        kinds = Counter(m.kind.value for m in run.final.values())
        print("moments: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

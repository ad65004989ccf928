"""`World`: wallets trading against a market maker along price paths, as raw transactions.

    w = World()
    alice = w.wallet("alice")
    bonk = w.token("BONK")
    w.buy(alice, bonk, qty=100, price="1")   # alice pays 100 USDC to the pool for 100 BONK
    w.wait(hours=1)
    w.trade(bonk, price="0.5")               # another wallet trades: a tick at $0.50
    run = w.run()                            # every raw result through parse_transaction + Engine

Time only moves when a test says so (`wait`); each transaction gets its own slot unless
made inside `with w.same_slot():`. The pool (the market maker: it owns the vaults on the
other side of every swap) and five market wallets hold plenty of everything. Encodings
alternate between `json` and `jsonParsed` unless the world is built with one of them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.engine import Engine
from core.mints import SOL_MINT, USDC_MINT, USDT_MINT
from core.models import Moment, MomentKind, ParsedTransaction
from core.thresholds import Thresholds
from tests.scenarios.chain import Encoding, Ledger, RawTx, address

__all__ = ["World", "Run", "DAY", "HOUR"]

HOUR = 3_600
DAY = 86_400
# Balances are u64 on chain (orjson, like the RPC, refuses anything bigger): 10^8 tokens at 9
# decimals and a million SOL stay well inside.
_PLENTY = Decimal(10) ** 8
_PLENTY_SOL = Decimal(10) ** 6


@dataclass
class Run:
    """The outcome of feeding a world to an engine."""

    upserts: list[Moment]
    engine: Engine

    @property
    def final(self) -> dict[str, Moment]:
        """Last state per moment id."""
        return {m.id: m for m in self.upserts}

    def moments(self, kind: MomentKind | None = None, wallet: str | None = None, mint: str | None = None) -> list[Moment]:
        return [m for m in self.final.values()
                if (kind is None or m.kind is kind) and (wallet is None or m.wallet == wallet)
                and (mint is None or m.mint == mint)]

    def one(self, kind: MomentKind, wallet: str | None = None, mint: str | None = None) -> Moment:
        found = self.moments(kind, wallet, mint)
        assert len(found) == 1, f"expected one {kind}, got {found}"
        return found[0]

    def none(self, kind: MomentKind, wallet: str | None = None) -> bool:
        return not self.moments(kind, wallet)

    def history(self, moment_id: str) -> list[Moment]:
        return [m for m in self.upserts if m.id == moment_id]


class World:
    def __init__(self, *, encoding: Encoding | None = None, start_time: int = 1_750_000_000,
                 start_slot: int = 340_000_000) -> None:
        self.ledger = Ledger()
        self.encoding = encoding
        self.time = start_time
        self.slot = start_slot
        self.txs: list[RawTx] = []
        self.traders: list[str] = []
        self._same_slot = False
        self._slot_used = False
        self.pool = address("pool:market-maker")
        self.market = [address(f"market:{i}") for i in range(5)]
        for mint in (USDC_MINT, USDT_MINT):
            self.ledger.add_mint(mint, 6)
        for owner in [self.pool, *self.market]:
            self.ledger.fund(owner, SOL_MINT, _PLENTY_SOL)
            for mint in (USDC_MINT, USDT_MINT):
                self.ledger.fund(owner, mint, _PLENTY)

    # -- setup ---------------------------------------------------------------------------
    def wallet(self, name: str, sol: Any = 1_000, usdc: Any = 1_000_000, usdt: Any = 0) -> str:
        """A trader (tracked by default) with balances from before the recording (the engine
        never sees those: it knows what the stream shows)."""
        wallet = address(f"wallet:{name}")
        self.traders.append(wallet)
        for mint, amount in ((SOL_MINT, sol), (USDC_MINT, usdc), (USDT_MINT, usdt)):
            if amount:
                self.ledger.fund(wallet, mint, amount)
        return wallet

    def hold(self, wallet: str, mint: str, amount: Decimal | str | int) -> None:
        """Give `wallet` a balance from before the recording."""
        self.ledger.fund(wallet, mint, amount)

    def token(self, name: str, decimals: int = 6) -> str:
        mint = address(f"mint:{name}")
        self.ledger.add_mint(mint, decimals)
        for owner in [self.pool, *self.market]:
            self.ledger.fund(owner, mint, _PLENTY)
        return mint

    # -- clock ---------------------------------------------------------------------------
    def wait(self, seconds: int = 0, *, minutes: int = 0, hours: int = 0, days: int = 0) -> None:
        self.time += seconds + 60 * minutes + HOUR * hours + DAY * days
        self._next_slot()

    @contextmanager
    def same_slot(self) -> Iterator[None]:
        self._next_slot()
        self._same_slot = True
        try:
            yield
        finally:
            self._same_slot = False
            self._next_slot()

    def _next_slot(self) -> None:
        if self._slot_used:
            self.slot += 1
            self._slot_used = False

    def _emit(self, build: Any, encoding: Encoding | None) -> RawTx:
        if not self._same_slot:
            self._next_slot()
        enc = encoding or self.encoding or ("json" if len(self.txs) % 2 == 0 else "jsonParsed")
        tx = build(self.slot, self.time, enc)
        self._slot_used = True
        self.txs.append(tx)
        return tx

    # -- transactions --------------------------------------------------------------------
    def swap(self, wallet: str, give: tuple[str, Any], get: tuple[str, Any], *, failed: bool = False,
             encoding: Encoding | None = None) -> RawTx:
        """`wallet` gives `give = (mint, ui amount)` to the pool and gets `get` back."""
        led = self.ledger
        moves = [(wallet, self.pool, give[0], led.raw(give[0], give[1])),
                 (self.pool, wallet, get[0], led.raw(get[0], get[1]))]
        return self._emit(lambda slot, t, enc: led.transaction(
            wallet, moves, slot=slot, block_time=t, encoding=enc, lookup=[self.pool], failed=failed), encoding)

    def buy(self, wallet: str, mint: str, qty: Any, price: Any, quote: str = USDC_MINT, **kw: Any) -> RawTx:
        """Buy `qty` of `mint` paying `qty * price` of `quote`."""
        return self.swap(wallet, (quote, Decimal(qty) * Decimal(price)), (mint, qty), **kw)

    def sell(self, wallet: str, mint: str, qty: Any, price: Any, quote: str = USDC_MINT, **kw: Any) -> RawTx:
        return self.swap(wallet, (mint, qty), (quote, Decimal(qty) * Decimal(price)), **kw)

    def trade(self, mint: str, price: Any, qty: Any = 1, quote: str = USDC_MINT, by: int = 0, **kw: Any) -> RawTx:
        """A market wallet (not a trader) buys `qty` of `mint` at `price`: a tick from another wallet."""
        return self.buy(self.market[by], mint, qty, price, quote, **kw)

    def sol_price(self, usd: Any, by: int = 4, **kw: Any) -> RawTx:
        """A market wallet buys 1 SOL for `usd` USDC: SOL's USD price."""
        return self.buy(self.market[by], SOL_MINT, 1, usd, USDC_MINT, **kw)

    def transfer(self, sender: str, receiver: str, mint: str, amount: Any, *,
                 encoding: Encoding | None = None, to_account_only: bool = False) -> RawTx:
        """`to_account_only`: a plain SPL transfer into the receiver's existing token account,
        which names that account but not the receiver (as on mainnet)."""
        led = self.ledger
        kind = "account_transfer" if to_account_only else "transfer"
        moves = [(sender, receiver, mint, led.raw(mint, amount))]
        from tests.scenarios.chain import SYSTEM_PROGRAM, TOKEN_PROGRAM

        program = SYSTEM_PROGRAM if mint == SOL_MINT else TOKEN_PROGRAM
        return self._emit(lambda slot, t, enc: led.transaction(
            sender, moves, slot=slot, block_time=t, encoding=enc, program=program, kind=kind), encoding)

    def deposit(self, receiver: str, mint: str, amount: Any, **kw: Any) -> RawTx:
        """Someone else (an exchange) sends `receiver` funds: a transfer in."""
        return self.transfer(self.market[3], receiver, mint, amount, **kw)

    def heartbeat(self, **kw: Any) -> RawTx:
        """A failed transaction of a market wallet: moves event time, nothing else."""
        return self.swap(self.market[2], (USDC_MINT, 1), (USDT_MINT, 1), failed=True, **kw)

    # -- running -------------------------------------------------------------------------
    def raws(self) -> list[dict[str, Any]]:
        return [tx.result for tx in self.txs]

    def parsed(self, tracked: Iterable[str] | None = None) -> list[ParsedTransaction]:
        """The expected ParsedTransactions (payer view + tracked receivers): drives an engine without the parser."""
        tracked = set(self.traders if tracked is None else tracked)
        out = []
        for tx in self.txs:
            payer = tx.result["transaction"]["message"]["accountKeys"][0]
            payer = payer if isinstance(payer, str) else payer["pubkey"]
            wallets = [payer] + sorted(w for w in tx.expected if w in tracked and w != payer)
            for wallet in wallets:
                exp = tx.expected.get(wallet)
                out.append(ParsedTransaction(
                    tx.signature, tx.slot, tx.block_time, wallet, (payer,), tx.failed, 5000 if wallet == payer else 0,
                    None, dict(exp.flows) if exp else {}, exp.trades if exp else ()))
        return out

    def run(self, *, tracked: Iterable[str] | None = None, shards: int = 1, thresholds: Thresholds | None = None,
            shuffle_seed: int | None = None, via: str = "raw", engine: Engine | None = None) -> Run:
        """Feed every transaction to a fresh engine (or `engine`), flush, collect the upserts.

        `shuffle_seed` shuffles transactions *within* each slot; `via="parsed"` skips the parser."""
        tracked = self.traders if tracked is None else tracked
        engine = engine or Engine(thresholds or Thresholds(), shard_count=shards, tracked=tracked)
        items: list[Any] = self.raws() if via == "raw" else self.parsed(tracked)
        if shuffle_seed is not None:
            items = shuffle_within_slots(items, shuffle_seed)
        upserts = engine.process_batch(items)
        upserts += engine.flush()
        return Run(upserts, engine)


def _slot_of(item: Any) -> int:
    return item["slot"] if isinstance(item, dict) else item.slot


def shuffle_within_slots(items: list[Any], seed: int) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = []
    group: list[Any] = []
    for item in items:
        if group and _slot_of(item) != _slot_of(group[0]):
            rng.shuffle(group)
            out += group
            group = []
        group.append(item)
    rng.shuffle(group)
    return out + group

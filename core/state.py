"""`ShardState`: everything one shard owns for the wallets routed to it.

Positions (FIFO lots), the detectors' open watches, timers and idle accumulators, the
shard's price subscriptions and its watermark. It is pure: the composition root feeds
it, per slot and in this order,

0. `on_references(answers)` — BAD_ROUTE references the price side answered in this slot;
1. `advance(slot, block_time)` — the watermark; due windows, timers and judgements fire;
2. `on_prices(slot_ticks)` — the slot's ticks of the mints it watches;
3. `apply(tx, leg_prices)` — each of its wallets' transactions in the slot, canonical
   order, with the USD prices the oracle gave their trades;
4. `take_history_requests()` → answered with `on_history(...)` — mints it started
   watching in this slot get their latest price; `take_reference_requests()` → sent to
   the price side;
5. `take_upserts()` — the deferred upserts (S2E, BHD: see `ShardContext.deferred`), at the
   end of the slot, or of a batch whose upserts the caller coalesces per id anyway.

`snapshot()` / `restore()` round-trip the whole state exactly (versioned JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, Protocol

from core.detectors import DETECTORS, Detector, Leg, LegRole, ShardContext
from core.mints import STABLECOINS
from core.models import Moment, Side, TradeEvent
from core.oracle import LegPrices, MintHistory, RefAnswer, RefRequest, SlotTicks
from core.positions import Positions
from core.snapshot import dumps, loads
from core.thresholds import Thresholds
from core.trades import TradeRec
from core.windows import Watermark

__all__ = ["ShardState", "WalletTx"]

_NO_PRICES: Final[dict[tuple[str, str, int], LegPrices]] = {}  # (never written to)
ZERO: Final = Decimal(0)
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_SWAP: Final = Side.SWAP
_R_BUY: Final = LegRole.BUY
_R_SELL: Final = LegRole.SELL
_R_SEND: Final = LegRole.SEND
_R_RECEIVE: Final = LegRole.RECEIVE


class WalletTx(Protocol):
    """What `ShardState.apply` reads of a transaction (a `ParsedTransaction` has all of it)."""

    @property
    def signature(self) -> str: ...
    @property
    def slot(self) -> int: ...
    @property
    def block_time(self) -> int | None: ...
    @property
    def wallet(self) -> str: ...
    @property
    def failed(self) -> bool: ...
    @property
    def flows(self) -> Mapping[str, Decimal]: ...
    @property
    def trades(self) -> tuple[TradeEvent, ...]: ...


def _overrides(detectors: list[Detector], hook: str) -> list[Detector]:
    """The detectors that override `hook` (the no-op defaults are skipped)."""
    base = getattr(Detector, hook)
    return [d for d in detectors if getattr(type(d), hook) is not base]


class ShardState:
    """Wallet-side state of one shard: positions, detectors, subscriptions, watermark."""

    def __init__(self, thresholds: Thresholds, shard_id: int = 0) -> None:
        self.shard_id = shard_id
        self.thresholds = thresholds
        self.ctx = ShardContext(thresholds, shard_id)
        self.detectors: list[Detector] = [cls(self.ctx) for cls in DETECTORS]
        self._on_seen = _overrides(self.detectors, "on_seen")
        trade_hooks = _overrides(self.detectors, "on_trade")
        self._buy_hooks = [d for d in trade_hooks if LegRole.BUY in d.roles]
        self._sell_hooks = [d for d in trade_hooks if LegRole.SELL in d.roles]
        self._send_hooks = [d for d in trade_hooks if LegRole.SEND in d.roles]
        self._receive_hooks = [d for d in trade_hooks if LegRole.RECEIVE in d.roles]
        self._on_tick = _overrides(self.detectors, "on_tick")
        self._on_history = _overrides(self.detectors, "on_history")
        self._on_reference = _overrides(self.detectors, "on_reference")
        self._on_watermark = _overrides(self.detectors, "on_watermark")

    @property
    def watermark(self) -> Watermark:
        return self.ctx.watermark

    @property
    def positions(self) -> Positions:
        return self.ctx.positions

    @property
    def watched(self) -> Mapping[str, int]:
        """Mints this shard needs ticks of (with a subscription count)."""
        return self.ctx.watched

    # -- the per-slot protocol ----------------------------------------------------------
    def advance(self, slot: int, block_time: int | None) -> list[Moment]:
        wm = self.ctx.watermark
        if slot > wm.slot:  # wm.advance(slot, block_time), inlined: this runs every slot
            wm.slot = slot
        if block_time is not None and block_time > wm.time:
            wm.time = block_time
        out: list[Moment] = []
        for d in self._on_watermark:
            found = d.on_watermark(wm)
            if found:
                out += found
        return out

    def on_prices(self, slot_ticks: Iterable[SlotTicks]) -> list[Moment]:
        out: list[Moment] = []
        watched, prices, hooks = self.ctx.watched, self.ctx.prices, self._on_tick
        for ticks in slot_ticks:  # (hooks may unwatch a mint, never watch one: checked as we go)
            mint = ticks[0]  # SlotTicks: a NamedTuple, whose attribute reads are slow in 3.11
            if mint not in watched:
                continue
            prices[mint] = ticks[6]  # .close
            for d in hooks:
                found = d.on_tick(ticks)
                if found:
                    out += found
        return out

    def on_references(self, answers: Iterable[RefAnswer]) -> None:
        """BAD_ROUTE references the price side answered for this shard (before `advance`)."""
        for answer in answers:
            for d in self._on_reference:
                d.on_reference(answer)

    def take_history_requests(self) -> list[str]:
        """Mints first watched in this slot: each wants its latest price (`on_history`)."""
        requests = list(self.ctx.history_requests)
        self.ctx.history_requests.clear()
        return requests

    def take_reference_requests(self) -> list[RefRequest]:
        """BAD_ROUTE reference requests made in this slot, for the price side."""
        requests = self.ctx.reference_requests
        self.ctx.reference_requests = []
        return requests

    def take_upserts(self) -> list[Moment]:
        """The deferred upserts since the last call, built now: one per moment id, its last state."""
        deferred = self.ctx.deferred
        if not deferred:
            return []
        self.ctx.deferred = {}
        return [d.materialize(w, status, updated_at, state) for d, w, status, updated_at, state in deferred.values()]

    def on_history(self, histories: Iterable[MintHistory]) -> None:
        for history in histories:
            if history.mint in self.ctx.watched and history.last_price is not None:
                self.ctx.prices[history.mint] = history.last_price
            for d in self._on_history:
                d.on_history(history)

    def apply(self, tx: WalletTx, leg_prices: dict[tuple[str, str, int], LegPrices] = _NO_PRICES) -> list[Moment]:
        """One transaction of a wallet this shard owns: each leg goes to positions, then to
        the detectors that want its role (`Detector.roles`)."""
        failed = tx.failed
        return self.apply_records(tx.wallet, tx.signature, tx.slot, tx.block_time, failed, tx.flows,
                                  [] if failed else [TradeRec(t) for t in tx.trades], leg_prices)

    def apply_records(self, wallet: str, sig: str, slot: int, block_time: int | None, failed: bool,
                      flows: Mapping[str, Decimal], trades: list[TradeRec],
                      leg_prices: dict[tuple[str, str, int], LegPrices]) -> list[Moment]:
        """`apply` with the transaction's fields at hand and its trades as `core.trades` copies."""
        ctx = self.ctx
        time = ctx.watermark.time if block_time is None else block_time
        out: list[Moment] = []
        for d in self._on_seen:
            found = d.on_seen(wallet, slot, time)
            if found:
                out += found
        if failed:
            return out
        positions = ctx.positions
        buy_hooks, sell_hooks = self._buy_hooks, self._sell_hooks
        send_hooks, receive_hooks = self._send_hooks, self._receive_hooks
        traded: dict[str, Decimal] = {}
        for trade in trades:
            ix, side, mint, amount = trade.ix, trade.side, trade.mint, trade.amount
            quote, quote_amount = trade.quote_mint, trade.quote_amount
            if flows:
                sold = side is _SELL
                traded[mint] = traded.get(mint, ZERO) + (-amount if sold else amount)
                traded[quote] = traded.get(quote, ZERO) + (quote_amount if sold else -quote_amount)
            key = f"{sig}:{ix}"
            price = trade.price_usd
            if side is _SWAP:
                lp = leg_prices.get((sig, wallet, ix))
                p_mint, p_quote = lp if lp else (None, None)  # LegPrices (mint, quote)
                positions.dispose(wallet, quote, quote_amount)
                leg = Leg(wallet, sig, ix, slot, time, _R_SELL, quote, quote_amount, p_quote,
                                 p_mint is None and p_quote is not None, None, False)
                for d in sell_hooks:
                    found = d.on_trade(leg)
                    if found:
                        out += found
                opened = positions.acquire(wallet, mint, amount, None if p_mint is None else amount * p_mint, key,
                                 slot, time, None if p_mint is None else (sig, p_mint))
                leg = Leg(wallet, sig, ix, slot, time, _R_BUY, mint, amount, p_mint, p_mint is not None, key,
                                 opened)
                for d in buy_hooks:
                    found = d.on_trade(leg)
                    if found:
                        out += found
                continue
            if price is None:
                lp = leg_prices.get((sig, wallet, ix))
                if lp is not None:
                    price = lp[0]  # LegPrices.mint
            if side is _BUY:
                if price is None:
                    opened = positions.acquire(wallet, mint, amount, None, key, slot, time, None)
                else:
                    opened = positions.acquire(wallet, mint, amount, quote_amount if quote in STABLECOINS else amount * price,
                                     key, slot, time, (sig, price))
                leg = Leg(wallet, sig, ix, slot, time, _R_BUY, mint, amount, price, price is not None, key,
                                 opened)
                for d in buy_hooks:
                    found = d.on_trade(leg)
                    if found:
                        out += found
                positions.dispose(wallet, quote, quote_amount)
                if send_hooks:
                    leg = Leg(wallet, sig, ix, slot, time, _R_SEND, quote, quote_amount, None, False, None,
                                     False)
                    for d in send_hooks:
                        found = d.on_trade(leg)
                        if found:
                            out += found
            else:
                positions.dispose(wallet, mint, amount)
                leg = Leg(wallet, sig, ix, slot, time, _R_SELL, mint, amount, price, price is not None, None,
                                 False)
                for d in sell_hooks:
                    found = d.on_trade(leg)
                    if found:
                        out += found
                value = None if price is None else (quote_amount if quote in STABLECOINS else amount * price)
                positions.acquire(wallet, quote, quote_amount, value, f"{key}:q", slot, time)
                if receive_hooks:
                    leg = Leg(wallet, sig, ix, slot, time, _R_RECEIVE, quote, quote_amount, None, False, None,
                                     False)
                    for d in receive_hooks:
                        found = d.on_trade(leg)
                        if found:
                            out += found
        if not flows:  # (a bare TradeEvent's view has none)
            return out
        for mint, delta in flows.items():  # what the trades do not explain: transfers in and out
            rest = delta - traded.get(mint, ZERO)
            if rest > 0:
                positions.acquire(wallet, mint, rest, None, f"{sig}:t", slot, time)
                leg, hooks = Leg(wallet, sig, -1, slot, time, _R_RECEIVE, mint, rest, None), receive_hooks
            elif rest < 0:
                positions.dispose(wallet, mint, -rest)
                leg, hooks = Leg(wallet, sig, -1, slot, time, _R_SEND, mint, -rest, None), send_hooks
            else:
                continue
            for d in hooks:
                found = d.on_trade(leg)
                if found:
                    out += found
        return out

    # -- checkpoints --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        ctx = self.ctx
        if ctx.deferred:  # they live in no checkpoint: a snapshot taken now would lose them
            raise RuntimeError("take_upserts() before a snapshot: deferred upserts are pending")
        return {
            "shard_id": self.shard_id,
            "watermark": ctx.watermark.to_list(),
            "positions": ctx.positions.to_dict(),
            "prices": ctx.prices,
            "watched": ctx.watched,
            "history_requests": list(ctx.history_requests),
            "reference_requests": [list(r) for r in ctx.reference_requests],
            "detectors": {d.kind.value: d.to_dict() for d in self.detectors},
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        ctx = self.ctx
        self.shard_id = ctx.shard_id = d["shard_id"]
        ctx.watermark = Watermark.from_list(d["watermark"])
        ctx.positions = Positions.from_dict(d["positions"])
        ctx.prices = {m: Decimal(p) for m, p in d["prices"].items()}
        ctx.watched = dict(d["watched"])
        ctx.history_requests = dict.fromkeys(d["history_requests"])
        ctx.reference_requests = [RefRequest(*r) for r in d["reference_requests"]]
        for detector in self.detectors:
            detector.load_dict(d["detectors"][detector.kind.value])

    def snapshot(self) -> bytes:
        return dumps("shard", self.to_dict())

    def restore(self, data: bytes) -> None:
        self.load_dict(loads("shard", data))

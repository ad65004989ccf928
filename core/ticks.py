"""What the oracle knows and says: per-mint price state, per-slot ticks, references.

Value types that cross the price/shard boundary (`SlotTicks`, `LegPrices`, `SlotPricing`,
`MintHistory`, `RefRequest`, `RefAnswer`, `Reference`), the per-mint state a price actor
owns (`MintBook`: last price, one-minute `Candle`s, recent ticks) and the BAD_ROUTE
reference rule (`reference_price`). `core.oracle.PriceBook` puts them to work.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final, NamedTuple

from core.models import Tick
from core.snapshot import decode_tick, encode_tick

__all__ = [
    "Candle",
    "SlotTicks",
    "LegPrices",
    "SlotPricing",
    "MintHistory",
    "Reference",
    "RefRequest",
    "RefAnswer",
    "reference_price",
    "MintBook",
    "new_tick",
]


class Candle:
    __slots__ = ("minute", "open", "high", "low", "close", "volume", "count")

    def __init__(self, minute: int, open: Decimal, high: Decimal, low: Decimal, close: Decimal, volume: Decimal,
                 count: int) -> None:
        self.minute = minute
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume  # token amount traded
        self.count = count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Candle) and self.to_list() == other.to_list()

    def __repr__(self) -> str:
        return (f"Candle(minute={self.minute}, open={self.open!r}, high={self.high!r}, low={self.low!r}, "
                f"close={self.close!r}, volume={self.volume!r}, count={self.count})")

    def to_list(self) -> list[Any]:
        return [self.minute, str(self.open), str(self.high), str(self.low), str(self.close), str(self.volume), self.count]

    @classmethod
    def from_list(cls, d: list[Any]) -> Candle:
        return cls(d[0], Decimal(d[1]), Decimal(d[2]), Decimal(d[3]), Decimal(d[4]), Decimal(d[5]), d[6])


class SlotTicks(NamedTuple):
    """All ticks of one mint in one slot (pricing order), with their extremes and last price."""

    mint: str
    slot: int
    block_time: int
    ticks: tuple[Tick, ...]
    high: Decimal
    low: Decimal
    close: Decimal


class LegPrices(NamedTuple):
    """USD per unit of a trade's `mint` and (token→token swaps only) of its `quote_mint`."""

    mint: Decimal | None
    quote: Decimal | None = None


class SlotPricing(NamedTuple):
    """What one slot's trades tell the oracle: ticks by mint, and the USD prices of the trades
    that came without one (`price_usd` None), by (signature, wallet, ix)."""

    slot: int
    block_time: int
    ticks: dict[str, SlotTicks]
    legs: dict[tuple[str, str, int], LegPrices]


class MintHistory(NamedTuple):
    """A new subscriber's start: the mint's latest price."""

    mint: str
    last_price: Decimal | None
    last_time: int | None


class Reference(NamedTuple):
    price: Decimal
    prices: tuple[Decimal, ...]  # the reference ticks' prices, sorted


class RefRequest(NamedTuple):
    """A shard asks for the BAD_ROUTE reference of a trade at `t` by `wallet`."""

    reply_to: int  # the shard that asked
    key: str  # the asker's handle for the trade
    mint: str
    t: int
    wallet: str


class RefAnswer(NamedTuple):
    reply_to: int
    key: str
    reference: Reference | None  # None: fewer reference ticks than required


_new_tuple: Final = tuple.__new__


def new_tick(mint: str, price_usd: Decimal, amount: Decimal, slot: int, block_time: int, wallet: str,
             signature: str) -> Tick:
    """`Tick(...)` without the keyword-parsing `__new__` of a NamedTuple: the oracle makes one per priced trade."""
    return _new_tuple(Tick, (mint, price_usd, amount, slot, block_time, wallet, signature))  # type: ignore[no-any-return]


def reference_price(
    ticks: Iterable[Tick], t: int, exclude_wallet: str, window: int, min_ticks: int
) -> Reference | None:
    """Median of the ticks within `[t - window, t + window]` from wallets other than
    `exclude_wallet`; None with fewer than `min_ticks` of them (no judgement without a reference)."""
    lo, hi = t - window, t + window
    # k[4], k[5], k[1]: block_time, wallet, price_usd (compiled code reads a NamedTuple field fastest by index)
    prices = sorted([k[1] for k in ticks if lo <= k[4] <= hi and k[5] != exclude_wallet])
    n = len(prices)
    if n < min_ticks or n == 0:
        return None
    mid = n // 2
    median = prices[mid] if n % 2 else (prices[mid - 1] + prices[mid]) / 2
    return Reference(median, tuple(prices))


class MintBook:
    """Price state of one mint: last price, candles, recent ticks."""

    __slots__ = ("last", "last_time", "candles", "recent")

    def __init__(self) -> None:
        self.last: Decimal | None = None
        self.last_time = 0
        self.candles: dict[int, Candle] = {}
        self.recent: deque[Tick] = deque()

    def add(self, tick: Tick, keep_since: int) -> None:
        """Record a tick; recent ticks older than `keep_since` go (candles: see `prune`)."""
        self.add_at(tick, tick.price_usd, tick.amount, tick.block_time, tick.block_time // 60, keep_since)

    def add_at(self, tick: Tick, price: Decimal, amount: Decimal, block_time: int, minute: int,
               keep_since: int) -> None:
        """`add` with the tick's price, amount, time and minute already at hand (the pricing loop)."""
        self.last = price
        self.last_time = block_time
        candle = self.candles.get(minute)
        if candle is None:
            self.candles[minute] = Candle(minute, price, price, price, price, amount, 1)
        else:
            if price > candle.high:
                candle.high = price
            elif price < candle.low:
                candle.low = price
            candle.close = price
            candle.volume += amount
            candle.count += 1
        recent = self.recent
        recent.append(tick)
        if recent[0][4] < keep_since:  # Tick.block_time
            while recent and recent[0][4] < keep_since:
                recent.popleft()

    def prune(self, keep_since: int, candles_since: int) -> None:
        recent, candles = self.recent, self.candles
        while recent and recent[0][4] < keep_since:  # Tick.block_time
            recent.popleft()
        first_minute = candles_since // 60
        stale = []
        for minute in candles:  # oldest first (inserted in time order)
            if minute >= first_minute:
                break
            stale.append(minute)
        for minute in stale:
            del candles[minute]

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": None if self.last is None else str(self.last),
            "last_time": self.last_time,
            "candles": [c.to_list() for c in self.candles.values()],
            "recent": [encode_tick(t) for t in self.recent],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MintBook:
        book = cls()
        book.last = None if d["last"] is None else Decimal(d["last"])
        book.last_time = d["last_time"]
        book.candles = {c[0]: Candle.from_list(c) for c in d["candles"]}
        book.recent = deque(decode_tick(t) for t in d["recent"])
        return book

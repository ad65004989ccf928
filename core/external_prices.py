"""Prices from outside the chain (Jupiter Price v3, historical OHLCV) as engine input: a tick like any other.

The oracle's unit of information is a priced swap. An external price of `mint` becomes
one: a `ParsedTransaction` of a pseudo-wallet (`ORACLE_WALLET`, never a Solana address, so
never tracked by a live source) buying one base unit of `mint` for its USD price in USDC.
Everything downstream is unchanged — the price side makes a tick (SOL's one moves SOL/USD),
candles, peaks and troughs see it, BAD_ROUTE counts it as a reference from another wallet,
and shards learn it exactly as they learn any tick: the pseudo-wallet feeds "the same
interface" the swaps do, and checkpoints and replays carry it like any view.

Event time: the caller places the view in the slot the stream is at (never a slot taken
from the wall clock); `block_time` is None, so it takes that slot's time. Stablecoins are
$1 by definition here and get no external price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from core.mints import STABLECOINS, USDC_MINT
from core.models import ParsedTransaction, Side, TradeEvent

__all__ = ["ORACLE_WALLET", "PROGRAM", "OHLCV_WALLET", "OHLCV_PROGRAM", "EXTERNAL_WALLETS", "price_view", "candle_view",
           "is_external"]

ORACLE_WALLET: Final = "oracle:jupiter-price-v3"
PROGRAM: Final = "jupiter_price_v3"
OHLCV_WALLET: Final = "oracle:birdeye-ohlcv"
OHLCV_PROGRAM: Final = "birdeye_ohlcv"
EXTERNAL_WALLETS: Final = frozenset({ORACLE_WALLET, OHLCV_WALLET})
_ONE: Final = Decimal(1)


def price_view(mint: str, usd_price: Decimal, *, slot: int, seq: int, decimals: int | None = None,
               block_id: int | None = None) -> ParsedTransaction | None:
    """The view that makes the oracle tick `mint` at `usd_price` in `slot` (None for a stablecoin).

    `seq` makes the signature unique per observation (the engine deduplicates by it) and
    orders two observations of one mint in one slot; `block_id`, Jupiter's slot for the
    price, is kept in the signature for the audit trail."""
    if mint in STABLECOINS:
        return None
    signature = f"jupiter-price-v3:{mint}:{block_id or 0:012d}:{seq:020d}"
    return _view(ORACLE_WALLET, PROGRAM, signature, mint, usd_price, slot, None, decimals)


def candle_view(mint: str, usd_price: Decimal, *, slot: int, block_time: int | None, candle_start: int, point: int,
                decimals: int | None = None) -> ParsedTransaction | None:
    """The view of one price of a historical candle (`point`: its place in the candle, 0–3), None
    for a stablecoin. The signature (`birdeye-ohlcv:<mint>:<start>:<point>`) is unique per price
    and sorts a mint's prices within one slot in time order."""
    if mint in STABLECOINS:
        return None
    signature = f"birdeye-ohlcv:{mint}:{candle_start:012d}:{point}"
    return _view(OHLCV_WALLET, OHLCV_PROGRAM, signature, mint, usd_price, slot, block_time, decimals)


def _view(wallet: str, program: str, signature: str, mint: str, usd_price: Decimal, slot: int,
          block_time: int | None, decimals: int | None) -> ParsedTransaction:
    if not usd_price.is_finite() or usd_price <= 0:
        raise ValueError(f"not a price: {usd_price}")
    unit = _ONE.scaleb(-decimals) if decimals else _ONE  # one base unit: no volume to speak of in candles
    trade = TradeEvent(signature=signature, slot=slot, block_time=block_time, ix=0, wallet=wallet, side=Side.BUY,
                       mint=mint, amount=unit, quote_mint=USDC_MINT, quote_amount=usd_price * unit,
                       price_usd=usd_price, program=program, fee_lamports=0)
    return ParsedTransaction(signature=signature, slot=slot, block_time=block_time, wallet=wallet, signers=(),
                             failed=False, fee_lamports=0, program=program, trades=(trade,))


def is_external(wallet: str) -> bool:
    """A pseudo-wallet of outside prices (Jupiter, historical candles), never a Solana address."""
    return wallet in EXTERNAL_WALLETS

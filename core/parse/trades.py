"""Turn a wallet's net flows into TradeEvents: one swap, classified against quote mints.

Only an unambiguous two-legged exchange becomes a trade: exactly one mint went out and
one came in. More legs (an arb, several swaps at once) are reported as flows but not
forced into a price. A small SOL residue beside a token→token swap is tips or protocol
fees, not a leg.
"""

from __future__ import annotations

from decimal import Decimal

from core.mints import QUOTE_PRIORITY, SOL_DECIMALS, SOL_MINT, STABLECOINS
from core.models import Side, TradeEvent
from core.parse.flows import WalletFlows

__all__ = ["SOL_RESIDUE_LAMPORTS", "TradeContext", "trades_from_flows"]

# Below this a SOL leg next to a token→token swap counts as tips/fees (0.01 SOL).
SOL_RESIDUE_LAMPORTS = 10_000_000


class TradeContext:
    """Identity of the transaction the trades belong to."""

    __slots__ = ("signature", "slot", "block_time", "wallet", "program", "fee_lamports")

    def __init__(
        self, signature: str, slot: int, block_time: int | None, wallet: str, program: str | None, fee_lamports: int
    ) -> None:
        self.signature = signature
        self.slot = slot
        self.block_time = block_time
        self.wallet = wallet
        self.program = program
        self.fee_lamports = fee_lamports


def trades_from_flows(flows: WalletFlows, ctx: TradeContext, tips: int = 0) -> tuple[TradeEvent, ...]:
    """The wallet's swap, if its flows show exactly one; `tips` lamports are kept out of the price."""
    lamports = flows.lamports + tips
    legs: dict[str, Decimal] = {
        mint: Decimal(raw).scaleb(-flows.decimals[mint]) for mint, raw in flows.tokens.items() if raw
    }
    has_token_both_ways = any(v > 0 for v in legs.values()) and any(v < 0 for v in legs.values())
    if lamports and not (has_token_both_ways and abs(lamports) < SOL_RESIDUE_LAMPORTS):
        legs[SOL_MINT] = Decimal(lamports).scaleb(-SOL_DECIMALS)

    gave = [(m, -v) for m, v in legs.items() if v < 0]
    got = [(m, v) for m, v in legs.items() if v > 0]
    if len(gave) != 1 or len(got) != 1:
        return ()
    (gave_mint, gave_amount), (got_mint, got_amount) = gave[0], got[0]

    gave_rank = QUOTE_PRIORITY.get(gave_mint, 0)
    got_rank = QUOTE_PRIORITY.get(got_mint, 0)
    if gave_rank == 0 and got_rank == 0:
        side, mint, amount, quote, quote_amount = Side.SWAP, got_mint, got_amount, gave_mint, gave_amount
    elif gave_rank > got_rank:  # paid with the quote: bought `got`
        side, mint, amount, quote, quote_amount = Side.BUY, got_mint, got_amount, gave_mint, gave_amount
    else:  # received the quote: sold `gave`
        side, mint, amount, quote, quote_amount = Side.SELL, gave_mint, gave_amount, got_mint, got_amount

    price_usd = quote_amount / amount if quote in STABLECOINS else None
    return (
        TradeEvent(
            signature=ctx.signature,
            slot=ctx.slot,
            block_time=ctx.block_time,
            ix=0,
            wallet=ctx.wallet,
            side=side,
            mint=mint,
            amount=amount,
            quote_mint=quote,
            quote_amount=quote_amount,
            price_usd=price_usd,
            program=ctx.program,
            fee_lamports=ctx.fee_lamports,
        ),
    )

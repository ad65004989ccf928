"""Well-known mints and programs that the domain logic treats specially."""

from decimal import Decimal

__all__ = [
    "SOL_MINT",
    "USDC_MINT",
    "USDT_MINT",
    "STABLECOINS",
    "QUOTE_PRIORITY",
    "SOL_DECIMALS",
    "LAMPORTS_PER_SOL",
    "TOKEN_PROGRAMS",
]

# WSOL's mint stands for native SOL everywhere: wrapped and native SOL are one asset.
SOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDT_MINT = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"

STABLECOINS = frozenset({USDC_MINT, USDT_MINT})

# When both sides of a swap are quote mints, the higher-priority one is the quote:
# SOL against USDC is a BUY/SELL of SOL priced in USDC (where SOL's USD price comes from).
QUOTE_PRIORITY: dict[str, int] = {USDC_MINT: 3, USDT_MINT: 2, SOL_MINT: 1}

SOL_DECIMALS = 9
LAMPORTS_PER_SOL = Decimal(10) ** SOL_DECIMALS

TOKEN_PROGRAMS = frozenset(
    {
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",  # SPL Token
        "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",  # Token-2022
    }
)

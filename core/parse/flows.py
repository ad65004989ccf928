"""A wallet's net balance change per mint from a transaction's pre/post balances.

Route-agnostic by design: multi-hop intermediates net to zero for the owner, so every
DEX and aggregator reads the same way. Rules (DESIGN "Data contracts"):
- token deltas are summed from raw integer `amount`s by `owner`, never `uiAmount` floats;
  a missing pre/post entry is a zero balance;
- WSOL is folded into SOL (both 9 decimals, so raw WSOL units are lamports);
- the fee the wallet paid is added back (a fee is not a trade);
- rent of token accounts the fee payer opened (closed) here is added back (taken out),
  read from that account's own lamports so Token-2022 accounts with extensions are exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.errors import ParseError
from core.mints import SOL_DECIMALS, SOL_MINT
from core.parse.accounts import AccountKeys

__all__ = ["TokenAccount", "WalletFlows", "read_token_accounts", "wallet_flows"]


@dataclass(slots=True)
class TokenAccount:
    index: int
    mint: str
    owner: str | None
    decimals: int
    pre: int | None = None  # raw amount; None = the account did not exist before
    post: int | None = None  # None = closed (or absent) after


@dataclass(frozen=True, slots=True)
class WalletFlows:
    lamports: int  # SOL leg in lamports: native + WSOL, fee added back, rent netted
    tokens: dict[str, int]  # mint -> raw delta (non-SOL mints the wallet's accounts hold)
    decimals: dict[str, int]

    def as_ui(self) -> dict[str, Decimal]:
        """Mint -> signed delta in UI units (SOL first)."""
        out = {SOL_MINT: Decimal(self.lamports).scaleb(-SOL_DECIMALS)}
        for mint, raw in self.tokens.items():
            out[mint] = Decimal(raw).scaleb(-self.decimals[mint])
        return out


def read_token_accounts(meta: Mapping[str, Any]) -> dict[int, TokenAccount]:
    accounts: dict[int, TokenAccount] = {}
    for field, attr in (("preTokenBalances", "pre"), ("postTokenBalances", "post")):
        for entry in meta.get(field) or ():
            try:
                index = int(entry["accountIndex"])
                mint = entry["mint"]
                ui = entry["uiTokenAmount"]
                amount = int(ui["amount"])
                decimals = int(ui["decimals"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ParseError(f"meta.{field} entry is malformed ({exc!r})") from None
            account = accounts.get(index)
            if account is None:
                account = accounts[index] = TokenAccount(index, mint, entry.get("owner"), decimals)
            elif account.owner is None:
                account.owner = entry.get("owner")
            setattr(account, attr, amount)
    return accounts


def wallet_flows(
    wallet: str,
    keys: AccountKeys,
    meta: Mapping[str, Any],
    token_accounts: Mapping[int, TokenAccount],
) -> WalletFlows:
    pre_balances = meta.get("preBalances") or ()
    post_balances = meta.get("postBalances") or ()
    index = keys.index(wallet)
    lamports = 0
    if index is not None and index < len(pre_balances):
        lamports = int(post_balances[index]) - int(pre_balances[index])
    is_fee_payer = index == 0
    if is_fee_payer:
        lamports += int(meta.get("fee") or 0)

    tokens: dict[str, int] = {}
    decimals: dict[str, int] = {}
    for account in token_accounts.values():
        if account.owner != wallet:
            continue
        delta = (account.post or 0) - (account.pre or 0)
        if account.mint == SOL_MINT:
            lamports += delta
        else:
            tokens[account.mint] = tokens.get(account.mint, 0) + delta
            decimals[account.mint] = account.decimals
        if is_fee_payer:
            lamports += _rent_netting(account, pre_balances, post_balances)
    return WalletFlows(lamports, tokens, decimals)


def _rent_netting(account: TokenAccount, pre_balances: Any, post_balances: Any) -> int:
    """Lamports to add back for a token account opened (+) or closed (-) in this tx."""
    wsol = account.mint == SOL_MINT  # a WSOL account's lamports also hold its tokens
    if account.pre is None and account.post is not None:
        locked = int(post_balances[account.index]) - (account.post if wsol else 0)
        return locked
    if account.pre is not None and account.post is None:
        released = int(pre_balances[account.index]) - (account.pre if wsol else 0)
        return -released
    return 0

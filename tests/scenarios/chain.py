"""A tiny ledger that writes well-formed `getTransaction` results, in `json` or `jsonParsed`.

It keeps every account's lamports and every token account's raw amount, so each
transaction's pre/post balances are consistent with the ones before it. Shapes follow
the recorded mainnet fixtures (tests/fixtures/mainnet/): v0 swaps put the pool's accounts
in an address lookup table (`json`: `meta.loadedAddresses`; `jsonParsed`: `accountKeys`
objects with `source: lookupTable`), token balances carry `accountIndex/mint/owner/
programId/uiTokenAmount{amount,decimals,uiAmount,uiAmountString}`, the fee payer pays a
5000-lamport fee and the rent of token accounts it creates.

Alongside each raw result the ledger states what a correct parser must report
(`Expected`: per wallet, net flows in UI units and the trade), derived from the intended
movements rather than from the raw JSON — an independent oracle for `core.parse`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import base58

from core.mints import QUOTE_PRIORITY, SOL_MINT, STABLECOINS
from core.models import Side, TradeEvent

__all__ = [
    "Encoding", "Expected", "Ledger", "RawTx", "address", "signature_for",
    "TOKEN_PROGRAM", "SYSTEM_PROGRAM", "ATA_PROGRAM", "RAYDIUM_V4", "FEE", "TOKEN_ACCOUNT_RENT",
]

Encoding = Literal["json", "jsonParsed"]
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
SYSTEM_PROGRAM = "11111111111111111111111111111111"
ATA_PROGRAM = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
RAYDIUM_V4 = "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8"
PROGRAM_LAMPORTS = 1_141_440
FEE = 5_000
TOKEN_ACCOUNT_RENT = 2_039_280
VENUE = {RAYDIUM_V4: "raydium_amm_v4"}


def address(label: str) -> str:
    """A deterministic, well-formed base58 public key for a label."""
    return base58.b58encode(hashlib.sha256(label.encode()).digest()).decode()


def signature_for(label: str) -> str:
    return base58.b58encode(hashlib.sha512(label.encode()).digest()).decode()


@dataclass(frozen=True)
class Expected:
    """What a correct parser reports for one wallet of one transaction."""

    wallet: str
    flows: dict[str, Decimal]
    trades: tuple[TradeEvent, ...]


@dataclass(frozen=True)
class RawTx:
    signature: str
    slot: int
    block_time: int
    result: dict[str, Any]  # the getTransaction `result`
    expected: dict[str, Expected] = field(default_factory=dict)  # wallet -> expectation
    failed: bool = False


class Ledger:
    """Balances of every account, plus the writer of transactions that change them."""

    def __init__(self) -> None:
        self.lamports: dict[str, int] = defaultdict(int)
        self.decimals: dict[str, int] = {SOL_MINT: 9}
        self.token_accounts: dict[tuple[str, str], str] = {}  # (owner, mint) -> account
        self.token_amounts: dict[str, int] = {}  # account -> raw amount
        self.account_info: dict[str, tuple[str, str]] = {}  # account -> (owner, mint)
        self.counter = 0

    # -- setup ---------------------------------------------------------------------------
    def add_mint(self, mint: str, decimals: int) -> None:
        self.decimals[mint] = decimals

    def raw(self, mint: str, ui: Decimal | str | int) -> int:
        value = Decimal(ui).scaleb(self.decimals[mint])
        if value != value.to_integral_value():
            raise ValueError(f"{ui} has more than {self.decimals[mint]} decimals")
        return int(value)

    def ui(self, mint: str, raw: int) -> Decimal:
        return Decimal(raw).scaleb(-self.decimals[mint])

    def fund(self, owner: str, mint: str, ui: Decimal | str | int) -> None:
        """Give `owner` a balance that predates the recording (no transaction)."""
        if mint == SOL_MINT:
            self.lamports[owner] += self.raw(SOL_MINT, ui)
            return
        account = self._token_account(owner, mint, create=True)
        self.token_amounts[account] += self.raw(mint, ui)

    def balance(self, owner: str, mint: str) -> int:
        if mint == SOL_MINT:
            return self.lamports[owner]
        account = self.token_accounts.get((owner, mint))
        return 0 if account is None else self.token_amounts[account]

    def _token_account(self, owner: str, mint: str, *, create: bool) -> str:
        account = self.token_accounts.get((owner, mint))
        if account is None and create:
            account = address(f"ata:{owner}:{mint}")
            self.token_accounts[(owner, mint)] = account
            self.token_amounts[account] = 0
            self.account_info[account] = (owner, mint)
            self.lamports[account] = TOKEN_ACCOUNT_RENT
        return account  # type: ignore[return-value]

    # -- transactions --------------------------------------------------------------------
    def transaction(
        self,
        payer: str,
        moves: list[tuple[str, str, str, int]],  # (from_owner, to_owner, mint, raw)
        *,
        slot: int,
        block_time: int,
        encoding: Encoding,
        program: str = RAYDIUM_V4,
        lookup: Sequence[str] = (),
        failed: bool = False,
        kind: str = "swap",
    ) -> RawTx:
        """One transaction signed and paid by `payer` that makes `moves` (all or, failed, none)."""
        self.counter += 1
        sig = signature_for(f"tx:{self.counter}:{payer}")
        static_w: list[str] = [payer]
        static_r: list[str] = []
        lut_w: list[str] = []

        def key(addr: str, *, writable: bool = True, lut: bool = False) -> None:
            if addr in static_w or addr in static_r or addr in lut_w:
                return
            (lut_w if lut else static_w if writable else static_r).append(addr)

        lam: dict[str, int] = defaultdict(int)
        tok: dict[str, int] = defaultdict(int)
        created: list[str] = []
        for src, dst, mint, amount in moves:
            in_lut_src, in_lut_dst = src in lookup, dst in lookup
            if mint == SOL_MINT:
                key(src, lut=in_lut_src)
                key(dst, lut=in_lut_dst)
                lam[src] -= amount
                lam[dst] += amount
                continue
            src_acc = self._token_account(src, mint, create=False)
            if src_acc is None or self.token_amounts[src_acc] + tok[src_acc] < amount:
                raise ValueError(f"{src[:6]} does not hold {amount} raw of {mint[:6]}")
            dst_acc = self.token_accounts.get((dst, mint)) or address(f"ata:{dst}:{mint}")
            if (dst, mint) not in self.token_accounts and dst_acc not in created:
                created.append(dst_acc)
                lam[payer] -= TOKEN_ACCOUNT_RENT
                lam[dst_acc] += TOKEN_ACCOUNT_RENT
                self.account_info[dst_acc] = (dst, mint)
            key(src_acc, lut=in_lut_src)
            key(dst_acc, lut=in_lut_dst)
            if kind == "account_transfer" and dst_acc in created:
                raise ValueError("a transfer naming only the token account needs that account to exist")
            if kind == "transfer" and dst != payer:
                key(dst, writable=False)  # the receiving wallet (its token account's owner)
            tok[src_acc] -= amount
            tok[dst_acc] += amount
            if self.token_amounts.get(dst_acc, 0) + tok[dst_acc] >= 2**64:
                raise ValueError(f"{dst[:6]} would hold more than a u64 of {mint[:6]}")
        lam[payer] -= FEE
        if failed:
            lam = defaultdict(int, {payer: -FEE})
            tok = defaultdict(int)
        for program_id in dict.fromkeys([program, TOKEN_PROGRAM] + ([SYSTEM_PROGRAM, ATA_PROGRAM] if created else [])):
            key(program_id, writable=False)
            self.lamports.setdefault(program_id, PROGRAM_LAMPORTS)
        keys = static_w + static_r + lut_w

        pre = [self.lamports[k] for k in keys]
        post = [self.lamports[k] + lam[k] for k in keys]
        for k, balance in zip(keys, post):
            if not 0 <= balance < 2**64:
                raise ValueError(f"{k[:6]} would end with {balance} lamports (not a u64)")
        pre_tok, post_tok = [], []
        for index, k in enumerate(keys):
            if k not in self.account_info:
                continue
            owner, mint = self.account_info[k]
            exists_before = k in self.token_amounts
            before = self.token_amounts.get(k, 0)
            if exists_before:
                pre_tok.append(self._token_balance(index, mint, owner, before))
            if exists_before or (k in created and not failed):
                post_tok.append(self._token_balance(index, mint, owner, before + tok[k]))
        if failed:  # the accounts it would have created never existed
            for k in created:
                del self.account_info[k]

        expected = {} if failed else self._expected(payer, moves, sig, slot, block_time, program, created)
        # commit
        for k in keys:
            self.lamports[k] += lam[k]
        if not failed:
            for acc in created:
                owner, mint = self.account_info[acc]
                self.token_accounts[(owner, mint)] = acc
                self.token_amounts[acc] = 0
            for acc, delta in tok.items():
                self.token_amounts[acc] += delta

        err = {"InstructionError": [0, {"Custom": 6001}]} if failed else None
        meta: dict[str, Any] = {
            "err": err,
            "status": {"Err": err} if failed else {"Ok": None},
            "fee": FEE,
            "preBalances": pre,
            "postBalances": post,
            "preTokenBalances": pre_tok,
            "postTokenBalances": post_tok,
            "innerInstructions": [],
            "logMessages": [f"Program {program} invoke [1]",
                            f"Program {program} failed: custom program error: 0x1771" if failed
                            else f"Program {program} success"],
            "rewards": [],
            "computeUnitsConsumed": 42_000,
        }
        n_static = len(static_w) + len(static_r)
        accounts = list(range(len(keys)))
        data = base58.b58encode(bytes([9]) + self.counter.to_bytes(8, "little")).decode()
        if encoding == "json":
            meta["loadedAddresses"] = {"writable": lut_w, "readonly": []}
            message: dict[str, Any] = {
                "accountKeys": static_w + static_r,
                "header": {"numRequiredSignatures": 1, "numReadonlySignedAccounts": 0,
                           "numReadonlyUnsignedAccounts": len(static_r)},
                "recentBlockhash": address(f"blockhash:{slot}"),
                "instructions": [{"programIdIndex": keys.index(program), "accounts": accounts, "data": data,
                                  "stackHeight": None}],
            }
        else:
            message = {
                "accountKeys": [
                    {"pubkey": k, "signer": i == 0, "writable": k in static_w or k in lut_w,
                     "source": "lookupTable" if i >= n_static else "transaction"}
                    for i, k in enumerate(keys)
                ],
                "recentBlockhash": address(f"blockhash:{slot}"),
                "instructions": [{"programId": program, "accounts": keys, "data": data, "stackHeight": None}],
            }
        if lut_w:
            message["addressTableLookups"] = [{"accountKey": address("lut:pools"),
                                               "writableIndexes": list(range(len(lut_w))), "readonlyIndexes": []}]
        result = {
            "slot": slot,
            "blockTime": block_time,
            "version": 0 if lut_w else "legacy",
            "transaction": {"signatures": [sig], "message": message},
            "meta": meta,
        }
        return RawTx(sig, slot, block_time, result, expected, failed)

    def _token_balance(self, index: int, mint: str, owner: str, raw: int) -> dict[str, Any]:
        ui = self.ui(mint, raw)
        text = format(ui.normalize(), "f") if raw else "0"
        return {
            "accountIndex": index,
            "mint": mint,
            "owner": owner,
            "programId": TOKEN_PROGRAM,
            "uiTokenAmount": {"amount": str(raw), "decimals": self.decimals[mint],
                              "uiAmount": float(ui) if raw else None, "uiAmountString": text},
        }

    def _expected(self, payer: str, moves: list[tuple[str, str, str, int]], sig: str, slot: int, block_time: int,
                  program: str, created: list[str]) -> dict[str, Expected]:
        """Net flows per wallet (fee and own rent added back) and the trade they make."""
        raw_flows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for src, dst, mint, amount in moves:
            raw_flows[src][mint] -= amount
            raw_flows[dst][mint] += amount
        for acc in created:  # rent of an account the payer opens for someone else is a real cost
            owner, _ = self.account_info[acc]
            if owner != payer:
                raw_flows[payer][SOL_MINT] -= TOKEN_ACCOUNT_RENT
        out = {}
        for wallet, flows in raw_flows.items():
            ui = {SOL_MINT: self.ui(SOL_MINT, flows.get(SOL_MINT, 0))}
            ui.update({m: self.ui(m, v) for m, v in flows.items() if m != SOL_MINT})
            trades = _trade(wallet, ui, sig, slot, block_time, VENUE.get(program), FEE if wallet == payer else 0)
            out[wallet] = Expected(wallet, ui, trades)
        return out


def _trade(wallet: str, flows: dict[str, Decimal], sig: str, slot: int, block_time: int, program: str | None,
           fee: int) -> tuple[TradeEvent, ...]:
    """DESIGN's rule: exactly one mint out and one in; token→quote SELL, quote→token BUY, else SWAP."""
    gave = [(m, -v) for m, v in flows.items() if v < 0]
    got = [(m, v) for m, v in flows.items() if v > 0]
    if len(gave) != 1 or len(got) != 1:
        return ()
    (g_mint, g_amt), (r_mint, r_amt) = gave[0], got[0]
    g_rank, r_rank = QUOTE_PRIORITY.get(g_mint, 0), QUOTE_PRIORITY.get(r_mint, 0)
    if g_rank == r_rank == 0:
        side, mint, amount, quote, quote_amount = Side.SWAP, r_mint, r_amt, g_mint, g_amt
    elif g_rank > r_rank:
        side, mint, amount, quote, quote_amount = Side.BUY, r_mint, r_amt, g_mint, g_amt
    else:
        side, mint, amount, quote, quote_amount = Side.SELL, g_mint, g_amt, r_mint, r_amt
    price = quote_amount / amount if quote in STABLECOINS else None
    return (TradeEvent(sig, slot, block_time, 0, wallet, side, mint, amount, quote, quote_amount, price, program, fee),)

"""Following the watched wallets' token accounts: what a transfer *into* a wallet touches.

A transfer into an existing token account names that account, not its owner, so neither
`accountInclude` nor `mentions` of the owner's address sees it. So every transaction a live
source emits is scanned for token accounts its watched wallets own after it
(`core.parse.owned_token_accounts`); new ones are saved (`on_follow`: a restart subscribes
them from the start) and handed to `LiveSource.follow`, which subscribes them on a live
connection with room — no new socket per discovery — and backfills each from the slot it
was found in (what touched it before the subscription took). Discoveries arriving within
`follow_delay_s` of each other go out as one subscription request. Accounts a wallet held
before the stream shows it using them are asked of the node (`getTokenAccountsByOwner`, both
token programs) when a wallet with no followed account starts, and followed from the slot
its connection started at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol
from collections.abc import Set as AbstractSet

import structlog

from core.errors import ExternalServiceError
from core.mints import TOKEN_PROGRAMS
from core.parse.accounts import owned_token_accounts
from streams.base import Emit, RawTx, SourceItem, TokenAccount

__all__ = ["FollowSave", "HeldAccounts", "TokenAccountFollower"]

log = structlog.get_logger()


FollowSave = Callable[[Sequence[TokenAccount]], Awaitable[None]]
Follow = Callable[[dict[str, TokenAccount]], Awaitable[None]]


class HeldAccounts(Protocol):
    async def get_token_accounts_by_owner(self, owner: str, program_id: str) -> tuple[int, list[tuple[str, str]]]: ...


class TokenAccountFollower:
    """Scans emitted transactions (sync, cheap) and follows what it finds (`run`, a task)."""

    def __init__(self, owners: AbstractSet[str], known: Iterable[TokenAccount], save: FollowSave | None,
                 delay_s: float, rpc: HeldAccounts | None = None) -> None:
        self.owners = owners  # the source's watched wallets, a live view: `watch` adds to it
        self.known = {t.account for t in known}
        self.known_owners = {t.owner for t in known}
        self.rpc = rpc
        self._lookups: dict[str, int] = {}  # wallet -> the slot its accounts are followed from
        self.save, self.delay_s = save, delay_s
        self._pending: dict[str, TokenAccount] = {}
        self._unsaved: list[TokenAccount] = []
        self._wake = asyncio.Event()

    def wrap(self, emit: Emit) -> Emit:
        """`emit`, then a scan of what it took (only what was handed over counts as seen)."""

        async def emit_and_scan(items: Sequence[SourceItem]) -> None:
            await emit(items)
            self.scan(items)

        return emit_and_scan

    def look_up(self, wallets: Iterable[str], since_slot: int) -> None:
        """Ask the node for what `wallets` hold already, unless some account of theirs is followed."""
        for wallet in wallets:
            if wallet in self.owners and wallet not in self.known_owners and self.rpc is not None:
                self._lookups.setdefault(wallet, since_slot)
        if self._lookups:
            self._wake.set()

    def scan(self, items: Sequence[SourceItem]) -> None:
        pending, known, owners = self._pending, self.known, self.owners
        for item in items:
            if not isinstance(item, RawTx) or item.result is None:
                continue
            for account, (owner, mint) in owned_token_accounts(item.result, owners).items():
                if account not in known and account not in pending:
                    pending[account] = TokenAccount(account, owner, mint, item.slot)
        if pending:
            self._wake.set()

    async def run(self, follow: Follow) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.delay_s)  # gather a burst into one subscription
            self._wake.clear()
            lookups, self._lookups = self._lookups, {}
            for wallet, since in lookups.items():
                for held in await self._held(wallet, since):
                    if held.account not in self.known:
                        self._pending.setdefault(held.account, held)
            found, self._pending = self._pending, {}
            if not found:
                continue
            self.known_owners.update(t.owner for t in found.values())
            self.known.update(found)
            log.info("source_token_accounts_found", count=len(found), owners=len({t.owner for t in found.values()}))
            await self._save([*self._unsaved, *found.values()])
            await follow(found)

    async def _held(self, wallet: str, since: int) -> list[TokenAccount]:
        assert self.rpc is not None
        held = []
        for program in sorted(TOKEN_PROGRAMS):
            try:
                _, accounts = await self.rpc.get_token_accounts_by_owner(wallet, program)
            except (ExternalServiceError, OSError, TimeoutError) as exc:  # the stream goes on without them
                log.warning("source_token_accounts_lookup_failed", wallet=wallet, error=f"{type(exc).__name__}: {exc}")
                continue
            held += [TokenAccount(account, wallet, mint, since) for account, mint in accounts]
        return held

    async def _save(self, accounts: list[TokenAccount]) -> None:
        self._unsaved = []
        if self.save is None or not accounts:
            return
        try:
            await self.save(accounts)
        except Exception as exc:  # noqa: BLE001 - the store is a callback; following must go on without it
            self._unsaved = accounts  # tried again with the next discovery
            log.warning("source_token_accounts_not_saved", count=len(accounts), error=f"{type(exc).__name__}: {exc}")

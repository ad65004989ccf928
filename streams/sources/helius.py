"""Helius `transactionSubscribe`: full transactions for up to 50,000 wallets per socket.

solana-py's client cannot decode these frames (and drops the whole connection on one it
cannot read), so this speaks JSON-RPC over `websockets` directly, with `max_size` raised
for full transactions, and decodes with `streams.codec`: an unreadable frame is counted and
skipped, the connection stays up. Reconnect, Gap, backfill and dedup: `_live.LiveSource`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect

from streams.base import RawTx, SourceStats, TokenAccount
from streams.codec import Malformed, RpcError, Subscribed, decode_frame, tx_account_keys
from streams.rpc import RpcClient
from streams.sources._delivery import CursorGet, CursorSet, Hit
from streams.sources._follow import FollowSave
from streams.sources._live import ConnectionLost, LivePolicy, LiveSource

__all__ = ["HeliusSource", "MAX_ACCOUNTS_PER_SOCKET"]

MAX_ACCOUNTS_PER_SOCKET = 50_000  # Helius' accountInclude limit
_TX_REQUEST, _SLOT_REQUEST = 1, 2
log = structlog.get_logger()


class HeliusSource(LiveSource):
    """Full transactions of `wallets` from a Helius websocket, as `RawTx` batches."""

    def __init__(
        self,
        ws_url: str,
        wallets: Sequence[str],
        rpc: RpcClient,
        *,
        policy: LivePolicy | None = None,
        cursor_get: CursorGet | None = None,
        cursor_set: CursorSet | None = None,
        commitment: str = "confirmed",
        encoding: str = "jsonParsed",
        max_message_bytes: int = 16 * 2**20,
        max_per_socket: int = MAX_ACCOUNTS_PER_SOCKET,
        max_supported_transaction_version: int = 1,
        own_rpc: bool = False,
        token_accounts: Sequence[TokenAccount] = (),
        on_follow: FollowSave | None = None,
    ) -> None:
        if not 0 < max_per_socket <= MAX_ACCOUNTS_PER_SOCKET:
            raise ValueError(f"max_per_socket must be in 1..{MAX_ACCOUNTS_PER_SOCKET}")
        # Backfilled transactions are fetched in the subscription's encoding: one shape downstream.
        super().__init__(
            wallets,
            rpc,
            max_per_socket=max_per_socket,
            policy=policy,
            cursor_get=cursor_get,
            cursor_set=cursor_set,
            encoding=encoding,
            own_rpc=own_rpc,
            token_accounts=token_accounts,
            on_follow=on_follow,
        )
        self.ws_url = ws_url
        self.commitment, self.encoding = commitment, encoding
        self.max_message_bytes = max_message_bytes
        self.max_supported_transaction_version = max_supported_transaction_version

    def subscribe_request(self, wallets: Sequence[str], request_id: int = _TX_REQUEST) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "transactionSubscribe",
            "params": [
                {"accountInclude": list(wallets), "vote": False, "failed": not self.policy.skip_failed},
                {
                    "commitment": self.commitment,
                    "encoding": self.encoding,
                    "transactionDetails": "full",
                    "showRewards": False,
                    "maxSupportedTransactionVersion": self.max_supported_transaction_version,
                },
            ],
        }

    @asynccontextmanager
    async def open_session(self, wallets: Sequence[str]) -> AsyncIterator[_HeliusSession]:
        async with connect(
            self.ws_url,
            max_size=self.max_message_bytes,
            ping_interval=self.policy.ping_interval_s,
            ping_timeout=self.policy.ping_interval_s,
            open_timeout=self.policy.open_timeout_s,
            close_timeout=2,
        ) as ws:
            requests = [self.subscribe_request(wallets)]
            if self.policy.watchdog_s is not None:
                requests.append({"jsonrpc": "2.0", "id": _SLOT_REQUEST, "method": "slotSubscribe"})
            for request in requests:
                await ws.send(orjson.dumps(request).decode())
            session = _HeliusSession(ws, wallets, self.stats, self.policy.skip_failed, self.subscribe_request)
            await asyncio.wait_for(session.confirm({r["id"] for r in requests}), self.policy.open_timeout_s)
            log.info("helius_subscribed", wallets=len(wallets))
            yield session


class _HeliusSession:
    def __init__(self, ws: ClientConnection, wallets: Sequence[str], stats: SourceStats, skip_failed: bool,
                 request: Callable[[Sequence[str], int], dict[str, Any]]) -> None:
        self._ws, self._stats, self._skip_failed, self._request = ws, stats, skip_failed, request
        self._wallets = set(wallets)
        self._early: list[Hit] = []  # notifications that beat the last confirmation
        self._adding: set[int] = set()  # ids of `add` subscriptions not confirmed yet
        self._next_id = _SLOT_REQUEST

    async def add(self, addresses: Sequence[str]) -> None:
        """One more `transactionSubscribe` on this socket; a refusal ends the connection (`_hits`),
        so the next one subscribes every address at once."""
        self._next_id += 1
        self._wallets.update(addresses)
        self._adding.add(self._next_id)
        await self._ws.send(orjson.dumps(self._request(addresses, self._next_id)).decode())

    @property
    def dropped(self) -> int:
        return 0  # nothing is discarded: an unread socket pushes back on the server instead

    async def confirm(self, request_ids: set[int]) -> None:
        waiting = set(request_ids)
        while waiting:
            for item in decode_frame(await self._ws.recv(), skip_failed=self._skip_failed):
                if isinstance(item, Subscribed) and item.request_id in waiting:
                    waiting.discard(item.request_id)  # type: ignore[arg-type]
                elif isinstance(item, RpcError) and item.request_id in waiting:
                    raise ConnectionLost(f"subscribe refused: {item.code} {item.message}")
                else:
                    self._early.extend(self._hits([item]))

    async def receive(self) -> list[Hit]:
        if self._early:
            early, self._early = self._early, []
            return early
        return self._hits(decode_frame(await self._ws.recv(), skip_failed=self._skip_failed))

    def _hits(self, items: Sequence[object]) -> list[Hit]:
        hits = []
        for item in items:
            if isinstance(item, RawTx):
                keys = tx_account_keys(item.result) if item.result is not None else ()
                hits.append(Hit(item.signature, item.slot, item.result, tuple(k for k in keys if k in self._wallets)))
            elif isinstance(item, Malformed):
                self._stats.malformed += 1
                log.warning("helius_frame_malformed", reason=item.reason)
            elif isinstance(item, Subscribed):
                self._adding.discard(item.request_id)  # type: ignore[arg-type]
            elif isinstance(item, RpcError):
                log.warning("helius_rpc_error", request_id=item.request_id, code=item.code, message=item.message)
                if item.request_id in self._adding:
                    raise ConnectionLost(f"subscribe refused: {item.code} {item.message}")
        return hits

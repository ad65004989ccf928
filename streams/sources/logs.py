"""Standard `logsSubscribe` (any RPC): one `mentions` subscription per wallet, then `getTransaction`.

Uses solana-py's `SolanaWsClient`, a new instance per connection (a closed one cannot be
reused). Its notification queue drops the oldest entry on overflow and counts it in
`dropped_notifications`: `_live` backfills on any increase. Any frame it cannot read kills
its connection; that is counted as malformed and handled like any other drop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import pydantic
import structlog
from solana.rpc.commitment import Commitment
from solana.rpc.websocket_api import OverflowPolicy, SolanaWsClient
from solders.errors import SerdeJSONError
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import LogsNotification

from streams.base import SourceStats, TokenAccount
from streams.rpc import RpcClient
from streams.sources._delivery import CursorGet, CursorSet, Hit
from streams.sources._follow import FollowSave
from streams.sources._live import ConnectionLost, LivePolicy, LiveSource

__all__ = ["LogsSource", "DEFAULT_MAX_PER_SOCKET"]

DEFAULT_MAX_PER_SOCKET = 1_000  # subscriptions per connection; providers cap this differently
log = structlog.get_logger()

# What SolanaWsClient re-raises when the frame that killed it was unreadable.
_UNREADABLE = (json.JSONDecodeError, SerdeJSONError, pydantic.ValidationError)


class LogsSource(LiveSource):
    """Signatures mentioning `wallets` from `logsSubscribe`, fetched and emitted as `RawTx`."""

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
        encoding: str = "json",
        max_message_bytes: int = 16 * 2**20,
        max_per_socket: int = DEFAULT_MAX_PER_SOCKET,
        request_timeout_s: float = 10.0,
        own_rpc: bool = False,
        token_accounts: Sequence[TokenAccount] = (),
        on_follow: FollowSave | None = None,
    ) -> None:
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
        self.commitment = Commitment(commitment)
        self.max_message_bytes = max_message_bytes
        self.request_timeout_s = request_timeout_s

    @asynccontextmanager
    async def open_session(self, wallets: Sequence[str]) -> AsyncIterator[_LogsSession]:
        client = SolanaWsClient(
            self.ws_url,
            request_timeout=self.request_timeout_s,
            notification_queue_size=self.policy.queue_size,
            overflow=OverflowPolicy.DROP_OLDEST,
            max_size=self.max_message_bytes,
            ping_interval=self.policy.ping_interval_s,
            ping_timeout=self.policy.ping_interval_s,
            open_timeout=self.policy.open_timeout_s,
            close_timeout=2,
        )
        async with client:
            owners = await self._subscribe(client, wallets)
            if self.policy.watchdog_s is not None:
                await client.slot_subscribe()
            log.info("logs_subscribed", wallets=len(wallets))
            yield _LogsSession(client, owners, self.stats, self.policy.skip_failed, self._subscribe)

    async def _subscribe(self, client: SolanaWsClient, wallets: Sequence[str]) -> dict[int, str]:
        """One `mentions` subscription per address: subscription id -> address."""
        subscriptions = await asyncio.gather(
            *(
                client.logs_subscribe(
                    filter_=RpcTransactionLogsFilterMentions(Pubkey.from_string(wallet)),
                    commitment=self.commitment,
                )
                for wallet in wallets
            )
        )
        return {sub.subscription_id: wallet for sub, wallet in zip(subscriptions, wallets, strict=True)}


class _LogsSession:
    def __init__(
        self, client: SolanaWsClient, owners: dict[int, str], stats: SourceStats, skip_failed: bool,
        subscribe: Callable[[SolanaWsClient, Sequence[str]], Awaitable[dict[int, str]]],
    ) -> None:
        self._client, self._owners, self._subscribe = client, owners, subscribe
        self._stats, self._skip_failed = stats, skip_failed

    async def add(self, addresses: Sequence[str]) -> None:
        # Notifications that beat the answer carry no address: emitted all the same, no cursor moves.
        self._owners.update(await self._subscribe(self._client, addresses))

    @property
    def dropped(self) -> int:
        return self._client.dropped_notifications

    async def receive(self) -> list[Hit]:
        try:
            notification = await self._client.recv()
        except _UNREADABLE as exc:
            self._stats.malformed += 1
            log.warning("logs_frame_malformed", reason=f"{type(exc).__name__}: {exc}")
            raise ConnectionLost("unreadable frame closed the client") from exc
        if not isinstance(notification, LogsNotification):
            return []  # slot ticks (watchdog) and anything else only prove the socket is alive
        value = notification.result.value
        if self._skip_failed and value.err is not None:
            return []
        wallet = self._owners.get(notification.subscription)
        return [Hit(str(value.signature), notification.result.context.slot, None, (wallet,) if wallet else ())]

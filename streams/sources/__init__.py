"""Source adapters, one module per kind, and `build_source` which picks one from settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.paths import project_root
from core.settings import SolanaSettings
from streams.base import Source, TokenAccount
from streams.rpc import RpcClient
from streams.sources._delivery import CursorGet, CursorSet, MemoryCursors
from streams.sources._follow import FollowSave
from streams.sources._live import LivePolicy
from streams.sources.helius import HeliusSource
from streams.sources.logs import LogsSource
from streams.sources.replay import ReplaySource

__all__ = [
    "build_source",
    "HeliusSource",
    "LogsSource",
    "ReplaySource",
    "LivePolicy",
    "MemoryCursors",
    "CursorGet",
    "CursorSet",
    "FollowSave",
]


def build_source(
    settings: SolanaSettings,
    *,
    rpc: RpcClient | None = None,
    cursor_get: CursorGet | None = None,
    cursor_set: CursorSet | None = None,
    policy: LivePolicy | None = None,
    batch_size: int = 100,
    wallets: list[str] | None = None,
    root: Path | None = None,
    token_accounts: Sequence[TokenAccount] = (),
    on_follow: FollowSave | None = None,
) -> Source:
    """The source `settings.source` names.

    `wallets` adds to `settings.wallets` (e.g. wallets users linked). Without `rpc`, a live
    source builds its own `RpcClient` from the settings and closes it when `run` ends.
    Cursor callbacks default to in-memory ones (no persistence across restarts).
    `token_accounts` (followed before) and `on_follow` (saves new ones): see `_follow`.
    """
    if settings.source == "replay":
        return ReplaySource(settings.replay_path(root or project_root()), batch_size)
    watched = list(dict.fromkeys([*settings.wallets, *(wallets or [])]))
    if not watched:
        raise ValueError(f"source {settings.source!r} needs at least one wallet to watch")
    kind: type[HeliusSource] | type[LogsSource] = HeliusSource if settings.source == "helius" else LogsSource
    return kind(
        settings.rpc_ws_url,
        watched,
        rpc or RpcClient.from_settings(settings),
        policy=policy or LivePolicy(batch_size=batch_size),
        cursor_get=cursor_get,
        cursor_set=cursor_set,
        commitment=settings.commitment,
        max_message_bytes=settings.max_ws_message_bytes,
        own_rpc=rpc is None,
        token_accounts=token_accounts,
        on_follow=on_follow,
    )

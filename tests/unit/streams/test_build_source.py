"""build_source picks the source that settings name, wired from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import SolanaSettings
from streams.base import Source
from streams.rpc import RpcClient
from streams.sources import HeliusSource, LogsSource, ReplaySource, build_source

WALLET = "5z4giZ7YjS7LMGYfPjCUA8qUUxNSFm3Ru3xGtKCziqb6"


def test_replay_reads_the_configured_recording_relative_to_the_root(tmp_path: Path) -> None:
    source = build_source(SolanaSettings(source="replay", replay_file=Path("rec.jsonl")), root=tmp_path, batch_size=7)

    assert isinstance(source, ReplaySource) and isinstance(source, Source)
    assert (source.path, source.batch_size) == (tmp_path / "rec.jsonl", 7)


@pytest.mark.parametrize(("kind", "cls"), [("helius", HeliusSource), ("logs", LogsSource)])
async def test_live_sources_are_wired_from_settings(kind: str, cls: type) -> None:
    settings = SolanaSettings(
        source=kind, rpc_ws_url="wss://rpc.example/?api-key=k", wallets=[WALLET], max_ws_message_bytes=1234
    )
    async with RpcClient("http://127.0.0.1:9/") as rpc:
        source = build_source(settings, rpc=rpc, wallets=[WALLET, "DtMUkCoeyzs35B6EpQQxPyyog6TRwXxV1W1Acp8nWBNa"])

    assert isinstance(source, cls) and isinstance(source, Source)
    assert source.wallets == (WALLET, "DtMUkCoeyzs35B6EpQQxPyyog6TRwXxV1W1Acp8nWBNa")
    assert (source.ws_url, source.max_message_bytes, source.rpc) == (settings.rpc_ws_url, 1234, rpc)


async def test_without_an_rpc_client_the_source_builds_and_owns_one() -> None:
    settings = SolanaSettings(source="helius", wallets=[WALLET], max_requests_per_10s=7)

    source = build_source(settings)

    assert isinstance(source, HeliusSource) and source.rpc.rate.capacity == 7
    await source.rpc.aclose()


def test_live_source_without_wallets_is_refused() -> None:
    with pytest.raises(ValueError, match="wallet"):
        build_source(SolanaSettings(source="logs"))

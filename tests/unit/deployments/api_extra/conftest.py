"""Fixtures for the link / analyze / stream / card tests: a real PostgreSQL, moments, the app.

These modules talk to PostgreSQL (LISTEN/NOTIFY, SKIP LOCKED and nonce consumption are the
point), so they reuse the integration suite's throwaway-database fixtures. `served` is the
real app (`build_app` over `build_deps`, as in `tests/unit/deployments/api`) reachable two
ways: in-process through httpx's ASGITransport (`api.client`) and over a real socket from
uvicorn (`url`), because ASGITransport buffers a streamed body until it ends, and an SSE
stream does not end.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import uvicorn

from core.models import Moment, MomentKind, MomentStatus, moment_id
from deployments.sse import MomentBroadcaster, SseSettings
from tests.integration.conftest import PIPELINE_TABLES, database_factory, db_dsn, pool  # noqa: F401 - fixtures
from tests.unit.deployments.api.conftest import (  # noqa: F401 - fixtures
    Api,
    api_dsn,
    api_settings,
    jwks_server,
    running_api,
    signing_key,
)

__all__ = ["MomentFactory", "Served", "SSE_TEST_SETTINGS"]

# Short heartbeats so a test sees one quickly; everything else as in production.
SSE_TEST_SETTINGS = SseSettings(heartbeat_s=0.3, client_buffer=64, keepalive_s=1.0)
_APP_STATE_OVERRIDES = ("wallet_linker", "analyze_jobs", "card_service")

MomentFactory = Callable[..., Moment]
_counter = itertools.count(1)


@pytest_asyncio.fixture(loop_scope="session")
async def db(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:  # noqa: F811 - the imported fixture
    """The session pool over freshly emptied tables."""
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(PIPELINE_TABLES)}")
    yield pool


@pytest.fixture
def make_moment() -> MomentFactory:
    """A valid moment; every call a new id unless `sig_ref` is given."""

    def make(
        wallet: str = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
        *,
        kind: MomentKind = MomentKind.S2E,
        mint: str = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263",
        sig_ref: str | None = None,
        status: MomentStatus = MomentStatus.OPEN,
        updated_at: int = 1_700_003_600,
        pct: str = "0.5",
    ) -> Moment:
        sig = sig_ref or f"sig{next(_counter)}"
        return Moment(
            id=moment_id(kind, wallet, mint, sig),
            kind=kind,
            wallet=wallet,
            mint=mint,
            severity=Decimal("0.25"),
            pct=Decimal(pct),
            usd_value=Decimal("123.45"),
            window_start=1_700_000_040,
            window_end=1_700_000_040 + 7 * 86_400,
            sig_ref=sig,
            slot_ref=250_000_000,
            status=status,
            detected_at=1_700_000_100,
            updated_at=updated_at,
            explain={"p_exit": Decimal("1.5")},
        )

    return make


@dataclass
class Served:
    api: Api
    url: str  # the same app over a real socket (uvicorn), for streaming

    @property
    def broadcaster(self) -> MomentBroadcaster | None:
        return getattr(self.api.app.state, "moment_broadcaster", None)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def served_app(
    api_dsn: str, signing_key: Any, jwks_server: Any, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
) -> AsyncIterator[Served]:
    settings = api_settings(api_dsn)
    async with running_api(settings, signing_key, jwks_server.url, cards_dir=tmp_path_factory.mktemp("cards")) as api:
        api.app.state.sse_settings = SSE_TEST_SETTINGS
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            api.app, lifespan="off", log_level="warning", http="h11", ws="none", timeout_graceful_shutdown=2
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
        try:
            async with asyncio.timeout(10):
                while not server.started:
                    await asyncio.sleep(0.01)
            yield Served(api, f"http://127.0.0.1:{sock.getsockname()[1]}")
        finally:
            server.should_exit = True
            await task
            sock.close()
            # Give the listening connection back before the pool closes (it would wait for it).
            broadcaster = getattr(api.app.state, "moment_broadcaster", None)
            if broadcaster is not None:
                await broadcaster.close()


@pytest_asyncio.fixture(loop_scope="session")
async def served(served_app: Served) -> Served:
    """The shared app over empty user and moment tables, without per-test service overrides."""
    async with served_app.api.deps.pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(PIPELINE_TABLES)}")
    served_app.api.deps.cache.clear_local()
    for name in _APP_STATE_OVERRIDES:
        if hasattr(served_app.api.app.state, name):
            delattr(served_app.api.app.state, name)
    return served_app

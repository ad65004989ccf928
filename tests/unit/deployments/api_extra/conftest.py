"""Fixtures for the link / analyze / stream / card tests: a real PostgreSQL, moments, keypairs.

These modules talk to PostgreSQL (LISTEN/NOTIFY, SKIP LOCKED and nonce consumption are the
point), so they reuse the integration suite's throwaway-database fixtures.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio

from core.models import Moment, MomentKind, MomentStatus, moment_id
from tests.integration.conftest import PIPELINE_TABLES, database_factory, db_dsn, pool  # noqa: F401 - fixtures

__all__ = ["MomentFactory"]

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

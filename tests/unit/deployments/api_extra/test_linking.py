"""Wallet linking with real ed25519 keypairs: sign the issued message, and every way to get it wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from solders.keypair import Keypair

from core.errors import ValidationError
from deployments.linking import LinkRejectedError, WalletLinker, link_message, parse_wallet, verify_wallet_signature
from streams.storage import WalletSource, tracked_wallets


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def sign(key: Keypair, message: str) -> str:
    return str(key.sign_message(message.encode()))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def linker(db: asyncpg.Pool, clock: Clock) -> WalletLinker:
    return WalletLinker(db, ttl=timedelta(minutes=5), clock=clock)


async def test_a_signed_nonce_links_and_tracks_the_wallet(linker: WalletLinker, db: asyncpg.Pool) -> None:
    key = Keypair()
    wallet = str(key.pubkey())

    grant = await linker.issue("alice", wallet)
    link = await linker.link("alice", wallet, grant.nonce, sign(key, grant.message))

    assert grant.message == (
        f"OOF wants you to link wallet {wallet} to account alice. Nonce: {grant.nonce}. Expires: 2026-03-01T12:05:00Z"
    )
    assert grant.expires_at == datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    assert (link.user_id, link.wallet) == ("alice", wallet)
    assert [w.wallet for w in await linker.wallets("alice")] == [wallet]
    assert await linker.wallets("bob") == []
    async with db.acquire() as conn:
        assert await tracked_wallets(conn, WalletSource.LINKED) == [wallet]


async def test_a_signature_by_another_key_is_refused_and_does_not_burn_the_nonce(linker: WalletLinker) -> None:
    key, impostor = Keypair(), Keypair()
    wallet = str(key.pubkey())
    grant = await linker.issue("alice", wallet)

    with pytest.raises(LinkRejectedError) as refused:
        await linker.link("alice", wallet, grant.nonce, sign(impostor, grant.message))
    with pytest.raises(LinkRejectedError) as garbage:
        await linker.link("alice", wallet, grant.nonce, "not-a-signature")

    assert refused.value.reason == garbage.value.reason == "signature_invalid"
    assert refused.value.status == 400
    assert refused.value.to_problem()["type"].endswith("/wallet-link-rejected")
    # The real owner can still use the nonce.
    await linker.link("alice", wallet, grant.nonce, sign(key, grant.message))


async def test_a_signature_over_another_message_is_refused(linker: WalletLinker) -> None:
    key = Keypair()
    wallet = str(key.pubkey())
    grant = await linker.issue("alice", wallet)
    tampered = grant.message.replace("alice", "mallory")

    with pytest.raises(LinkRejectedError, match="signature"):
        await linker.link("alice", wallet, grant.nonce, sign(key, tampered))


async def test_a_nonce_is_single_use(linker: WalletLinker) -> None:
    key = Keypair()
    wallet = str(key.pubkey())
    grant = await linker.issue("alice", wallet)
    signature = sign(key, grant.message)
    await linker.link("alice", wallet, grant.nonce, signature)

    with pytest.raises(LinkRejectedError) as reused:
        await linker.link("alice", wallet, grant.nonce, signature)

    assert (reused.value.reason, reused.value.status) == ("nonce_used", 409)


async def test_an_expired_nonce_is_refused(linker: WalletLinker, clock: Clock) -> None:
    key = Keypair()
    wallet = str(key.pubkey())
    grant = await linker.issue("alice", wallet)
    clock.now += timedelta(minutes=5)

    with pytest.raises(LinkRejectedError) as expired:
        await linker.link("alice", wallet, grant.nonce, sign(key, grant.message))

    assert (expired.value.reason, expired.value.status) == ("nonce_expired", 400)


async def test_another_users_nonce_reads_as_unknown(linker: WalletLinker) -> None:
    key = Keypair()
    wallet = str(key.pubkey())
    grant = await linker.issue("alice", wallet)

    with pytest.raises(LinkRejectedError) as stolen:
        await linker.link("mallory", wallet, grant.nonce, sign(key, grant.message))
    with pytest.raises(LinkRejectedError) as unknown:
        await linker.link("alice", wallet, "no-such-nonce", sign(key, grant.message))
    with pytest.raises(LinkRejectedError) as other_wallet:
        await linker.link("alice", str(Keypair().pubkey()), grant.nonce, sign(key, grant.message))

    assert stolen.value.reason == unknown.value.reason == "nonce_unknown"
    assert other_wallet.value.reason == "nonce_wallet_mismatch"


async def test_wallets_must_be_signing_addresses(linker: WalletLinker) -> None:
    with pytest.raises(ValidationError):
        await linker.issue("alice", "not-base58-0OIl")
    with pytest.raises(ValidationError, match="field"):
        # A program-derived address (off the curve) can never sign.
        parse_wallet("5FRFKetBc2pg8btuzfxBYqpbwwh21t1NEr835WC7khy2")


def test_signature_helpers() -> None:
    key = Keypair()
    wallet = str(key.pubkey())
    message = link_message(wallet, "u", "n", datetime(2026, 1, 1, tzinfo=UTC))

    assert verify_wallet_signature(wallet, message, sign(key, message))
    assert not verify_wallet_signature(wallet, message + " ", sign(key, message))
    assert not verify_wallet_signature(wallet, message, "1" * 10)

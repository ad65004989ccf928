"""Wallet linking: a user proves they own a wallet by signing a server-issued nonce with it.

The flow is two calls. `issue` stores a random single-use nonce bound to (user, wallet)
with an expiry and returns the exact message to sign. `link` consumes the nonce with one
conditional UPDATE, verifies the ed25519 signature over the message rebuilt from the stored
row, then records the link and starts tracking the wallet, all in one transaction: a bad
signature rolls the consumption back, so a mistyped signature does not burn the nonce.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from solders.pubkey import Pubkey
from solders.signature import Signature

from core.errors import FieldError, OofError, ValidationError
from streams.storage import (
    LinkNonce,
    WalletLink,
    WalletSource,
    consume_link_nonce,
    create_link_nonce,
    get_link_nonce,
    insert_wallet_link,
    list_wallet_links,
    track_wallets,
)
from streams.storage._db import Conn

__all__ = [
    "Clock",
    "ConnectionSource",
    "LinkRejectedError",
    "NamedConnections",
    "NonceGrant",
    "WalletLinker",
    "iso_utc",
    "link_message",
    "parse_wallet",
    "utc_now",
    "verify_wallet_signature",
]

Clock = Callable[[], datetime]


class ConnectionSource(Protocol):
    """Anything that lends connections: an asyncpg pool, or a wrapper with the same `acquire()`."""

    def acquire(self) -> AbstractAsyncContextManager[Conn]: ...


class NamedConnections:
    """`compose.Deps.connection(query)` as a `ConnectionSource`: every borrow timed under `query`."""

    def __init__(self, deps: Any, query: str) -> None:
        self._deps = deps
        self._query = query

    def acquire(self) -> AbstractAsyncContextManager[Conn]:
        connection: AbstractAsyncContextManager[Conn] = self._deps.connection(self._query)
        return connection


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """`2026-03-01T12:05:00Z`: whole seconds, so the message rebuilt from the database is identical."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


class LinkRejectedError(OofError):
    """The link attempt failed; `reason` is a stable code a client can branch on."""

    type_slug = "wallet-link-rejected"
    status = 400
    title = "Wallet link rejected"

    def __init__(self, reason: str, detail: str, *, status: int = 400, internal: str | None = None) -> None:
        self.reason = reason
        super().__init__(detail, status=status, internal=internal)

    def extensions(self) -> dict[str, Any]:
        return {"reason": self.reason}


@dataclass(frozen=True, slots=True)
class NonceGrant:
    """What the client signs (`message`, UTF-8) and sends back with `nonce`."""

    nonce: str
    wallet: str
    message: str
    expires_at: datetime


def link_message(wallet: str, user_id: str, nonce: str, expires_at: datetime) -> str:
    return f"OOF wants you to link wallet {wallet} to account {user_id}. Nonce: {nonce}. Expires: {iso_utc(expires_at)}"


def parse_wallet(value: str, field: str = "body.wallet") -> str:
    """A base58 ed25519 public key, in canonical spelling; 422 otherwise."""
    try:
        key = Pubkey.from_string(value.strip())
    except ValueError:
        raise ValidationError([FieldError(field, "not a base58 Solana address")]) from None
    if not key.is_on_curve():
        # Program-derived addresses have no private key, so they can never sign the nonce.
        raise ValidationError([FieldError(field, "not a wallet address (off the ed25519 curve)")])
    return str(key)


def verify_wallet_signature(wallet: str, message: str, signature: str) -> bool:
    """True when `signature` (base58) is `wallet`'s ed25519 signature of `message` (UTF-8)."""
    try:
        sig = Signature.from_string(signature.strip())
    except ValueError:
        return False
    return sig.verify(Pubkey.from_string(wallet), message.encode())


class WalletLinker:
    """Issues nonces and records links; `clock` and `ttl` are injectable for tests."""

    def __init__(
        self,
        db: ConnectionSource,
        *,
        ttl: timedelta = timedelta(minutes=5),
        clock: Clock = utc_now,
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock

    async def issue(self, user_id: str, wallet: str) -> NonceGrant:
        wallet = parse_wallet(wallet)
        nonce = secrets.token_urlsafe(24)
        expires_at = (self._clock() + self._ttl).astimezone(UTC).replace(microsecond=0)
        async with self._db.acquire() as conn:
            await create_link_nonce(conn, nonce, user_id, wallet, expires_at)
        return NonceGrant(nonce, wallet, link_message(wallet, user_id, nonce, expires_at), expires_at)

    async def link(self, user_id: str, wallet: str, nonce: str, signature: str) -> WalletLink:
        wallet = parse_wallet(wallet)
        now = self._clock()
        async with self._db.acquire() as conn, conn.transaction():
            used = await consume_link_nonce(conn, nonce, user_id, wallet, now)
            if used is None:
                raise self._unusable(await get_link_nonce(conn, nonce), user_id, wallet, now)
            message = link_message(wallet, user_id, nonce, used.expires_at)
            if not verify_wallet_signature(wallet, message, signature):
                raise LinkRejectedError(
                    "signature_invalid", "the signature is not this wallet's signature of the issued message"
                )
            link = await insert_wallet_link(conn, user_id, wallet)
            await track_wallets(conn, [wallet], WalletSource.LINKED, user_id)
        return link

    async def wallets(self, user_id: str) -> list[WalletLink]:
        async with self._db.acquire() as conn:
            return await list_wallet_links(conn, user_id)

    @staticmethod
    def _unusable(row: LinkNonce | None, user_id: str, wallet: str, now: datetime) -> LinkRejectedError:
        # Someone else's nonce reads as unknown: its existence is not the caller's business.
        if row is None or row.user_id != user_id:
            return LinkRejectedError("nonce_unknown", "this nonce was not issued to you; request a new one")
        if row.wallet != wallet:
            return LinkRejectedError("nonce_wallet_mismatch", "this nonce was issued for another wallet")
        if row.used_at is not None:
            return LinkRejectedError("nonce_used", "this nonce has already been used; request a new one", status=409)
        if row.expires_at <= now:
            return LinkRejectedError("nonce_expired", "this nonce has expired; request a new one")
        # Unreachable unless it was consumed between the UPDATE and the SELECT: treat as used.
        return LinkRejectedError("nonce_used", "this nonce has already been used; request a new one", status=409)

"""Wallet linking: `POST /v1/wallets/link/nonce`, `POST /v1/wallets/link`, `GET /v1/wallets` (users only).

1. Ask for a nonce for a wallet: the answer holds the exact `message` to sign and when the
   nonce expires (single use, a few minutes).
2. Sign the message's UTF-8 bytes with the wallet's key (ed25519, as `signMessage` in any
   Solana wallet does) and post `{wallet, nonce, signature}` (signature in base58).

A refused attempt is a `wallet-link-rejected` problem whose `reason` says why:
`signature_invalid`, `nonce_unknown`, `nonce_wallet_mismatch`, `nonce_expired` (400) or
`nonce_used` (409). A linked wallet is tracked from then on, and its moments become the
user's to read, stream and render.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from deployments.auth import Principal
from deployments.compose import Deps, get_deps
from deployments.linking import NamedConnections, WalletLinker, iso_utc
from deployments.middleware import USERS_ONLY, user_caller
from deployments.problems import Problem, problem_responses

__all__ = ["router", "NonceRequest", "NonceOut", "LinkRequest", "LinkedWallet", "LinkedWallets", "get_linker"]

router = APIRouter(prefix="/v1", tags=["wallets"])

_REJECTED = {
    400: {"model": Problem, "description": "`wallet-link-rejected`: bad signature, unknown or expired nonce"},
    409: {"model": Problem, "description": "`wallet-link-rejected` with reason `nonce_used`"},
}


class NonceRequest(BaseModel):
    wallet: str = Field(max_length=64, description="the base58 address to link")


class NonceOut(BaseModel):
    nonce: str
    wallet: str
    message: str = Field(description="sign exactly these UTF-8 bytes with the wallet's key")
    expires_at: str = Field(description="ISO-8601 UTC; the nonce is refused from then on")


class LinkRequest(BaseModel):
    wallet: str = Field(max_length=64)
    nonce: str = Field(max_length=128)
    signature: str = Field(max_length=128, description="base58 ed25519 signature of `message`")


class LinkedWallet(BaseModel):
    wallet: str
    linked_at: str = Field(description="ISO-8601 UTC")


class LinkedWallets(BaseModel):
    wallets: list[LinkedWallet]


def get_linker(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> WalletLinker:
    """The app's linker, made on first use (tests preset `app.state.wallet_linker` to inject a clock)."""
    linker: WalletLinker | None = getattr(request.app.state, "wallet_linker", None)
    if linker is None:
        linker = request.app.state.wallet_linker = WalletLinker(NamedConnections(deps, "wallet_links"))
    return linker


@router.post(
    "/wallets/link/nonce",
    response_model=NonceOut,
    summary="Issue a single-use nonce and the message to sign with the wallet",
    responses=problem_responses(401, 403, 422, 429),
    openapi_extra=USERS_ONLY,
)
async def issue_nonce(
    body: NonceRequest,
    principal: Annotated[Principal, Depends(user_caller)],
    linker: Annotated[WalletLinker, Depends(get_linker)],
) -> NonceOut:
    grant = await linker.issue(principal.id, body.wallet)
    return NonceOut(nonce=grant.nonce, wallet=grant.wallet, message=grant.message, expires_at=iso_utc(grant.expires_at))


@router.post(
    "/wallets/link",
    response_model=LinkedWallet,
    status_code=201,
    summary="Link a wallet by its signature of the issued message",
    responses={**problem_responses(401, 403, 422, 429), **_REJECTED},
    openapi_extra=USERS_ONLY,
)
async def link_wallet(
    body: LinkRequest,
    principal: Annotated[Principal, Depends(user_caller)],
    linker: Annotated[WalletLinker, Depends(get_linker)],
) -> LinkedWallet:
    link = await linker.link(principal.id, body.wallet, body.nonce, body.signature)
    return LinkedWallet(wallet=link.wallet, linked_at=iso_utc(link.linked_at))


@router.get(
    "/wallets",
    response_model=LinkedWallets,
    summary="The wallets linked to your account",
    responses=problem_responses(401, 403, 429),
    openapi_extra=USERS_ONLY,
)
async def list_linked_wallets(
    principal: Annotated[Principal, Depends(user_caller)],
    linker: Annotated[WalletLinker, Depends(get_linker)],
) -> LinkedWallets:
    links = await linker.wallets(principal.id)
    return LinkedWallets(wallets=[LinkedWallet(wallet=l.wallet, linked_at=iso_utc(l.linked_at)) for l in links])

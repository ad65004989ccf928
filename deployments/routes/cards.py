"""`GET /v1/cards/moment/{moment_id}.png`: a moment as a 1200×630 PNG card (users: own wallets; services: any).

Cards are rendered once per moment version and kept in the object store (`deployments.cards`);
the `ETag` names that version, so `If-None-Match` answers 304 without touching the store,
and a moment that changes gets a new ETag and a fresh render. Open moments are marked
OPEN on the card and cached briefly; final ones for a day. Another user's moment is a 404,
like a missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request, Response

from core.errors import NotFoundError
from core.models import MomentStatus
from core.paths import project_root
from deployments.auth import Principal
from deployments.cards import CardService, LocalFileStore, card_version
from deployments.compose import Deps, get_deps
from deployments.linking import NamedConnections
from deployments.middleware import ANY_CALLER, caller
from deployments.problems import problem_responses
from deployments.routes.moments import wallet_scope
from streams.storage import get_moment

__all__ = ["router", "get_card_service", "etag_matches", "CACHE_OPEN", "CACHE_FINAL"]

router = APIRouter(prefix="/v1", tags=["cards"])

CACHE_OPEN = "private, max-age=60"  # an open moment may deepen any minute
CACHE_FINAL = "private, max-age=86400"  # a final one only changes if a replay corrects it


def get_card_service(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> CardService:
    """The app's card service over the configured store, made on first use (tests may preset `app.state.card_service`)."""
    cards: CardService | None = getattr(request.app.state, "card_service", None)
    if cards is None:
        store = deps.cards_store or LocalFileStore(deps.settings.cards.local_path(project_root()))
        cards = request.app.state.card_service = CardService(NamedConnections(deps, "card_candles"), store)
    return cards


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of an `If-None-Match` list (or `*`) against our strong ETag."""
    if not if_none_match:
        return False
    candidates = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in candidates or etag in (tag.removeprefix("W/") for tag in candidates)


@router.get(
    "/cards/moment/{moment_id}.png",
    response_class=Response,
    summary="A moment rendered as a PNG card (1200×630)",
    responses={
        200: {"content": {"image/png": {}}, "description": "the card; `ETag` names the moment version"},
        304: {"description": "the card you hold (`If-None-Match`) is current"},
        **problem_responses(401, 403, 404, 422, 429),
    },
    openapi_extra=ANY_CALLER,
)
async def moment_card(
    moment_id: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,80}$", description="e.g. `s2e_<32 hex>`")],
    principal: Annotated[Principal, Depends(caller)],
    deps: Annotated[Deps, Depends(get_deps)],
    cards: Annotated[CardService, Depends(get_card_service)],
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    async with deps.connection("get_moment") as conn:
        moment = await get_moment(conn, moment_id)
    if moment is not None and principal.kind == "user":
        visible = await wallet_scope(deps, principal, None, among=[moment.wallet])
        moment = moment if visible else None
    if moment is None:
        raise NotFoundError(f"no moment {moment_id!r}")
    etag = f'"{card_version(moment)}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_FINAL if moment.status is MomentStatus.FINAL else CACHE_OPEN,
        "Vary": "Authorization",
    }
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    card = await cards.card(moment)
    return Response(card.png, media_type="image/png", headers=headers)

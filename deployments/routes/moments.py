"""`GET /v1/moments` (filtered, keyset-paginated) and `GET /v1/moments/{moment_id}`.

Pagination is keyset on `(detected_at DESC, id DESC)`: the cursor names the last row of the
page, so moments inserted meanwhile never shift a page (no duplicates, no gaps among what
existed). The cursor is opaque to clients: base64url of `[detected_at, id, tag]`, where `tag`
is a checksum over the position *and the filters*, so an edited cursor, or one reused with
other filters, is a 422 — never a silently wrong page. It is an integrity check, not a
secret: a forged cursor could only seek within what the caller may see anyway.

Who sees what: a service sees every wallet; a user sees the wallets they linked
(`wallet_links`), and asking for another wallet is a 403. Another user's moment by id is a
404 (its existence is not disclosed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from solders.pubkey import Pubkey

from core.codec import moment_to_dict
from core.errors import FieldError, ForbiddenError, NotFoundError, ValidationError
from core.models import Moment, MomentKind, MomentStatus
from deployments.auth import Principal
from deployments.compose import Deps, get_deps
from deployments.middleware import ANY_CALLER, caller
from deployments.problems import problem_responses
from streams.storage import MomentCursor, get_moment, linked_wallets, list_moments

__all__ = [
    "router",
    "DecimalText",
    "MomentOut",
    "MomentPage",
    "MomentQuery",
    "moment_query",
    "moment_out",
    "encode_cursor",
    "decode_cursor",
    "parse_time",
    "check_wallet",
    "wallet_scope",
    "page_of_moments",
]

router = APIRouter(prefix="/v1", tags=["moments"])

DecimalText = Annotated[str, Field(json_schema_extra={"format": "decimal"}, examples=["12.5"])]
MAX_LIMIT = 200
_CURSOR_KEY = b"oof.moments.cursor.v1"
_UNIX = re.compile(r"-?\d{1,12}(\.\d+)?")


class MomentOut(BaseModel):
    """A detected trading mistake. Money and ratios are exact decimal strings; times are unix seconds."""

    id: str
    kind: MomentKind
    wallet: str
    mint: str
    severity: DecimalText = Field(description="0..1, a monotone function of `pct`")
    pct: DecimalText
    usd_value: DecimalText
    window_start: int
    window_end: int
    sig_ref: str
    slot_ref: int
    status: MomentStatus
    detected_at: int
    updated_at: int
    explain: dict[str, Any] = Field(description="every number the detector used")


class MomentPage(BaseModel):
    items: list[MomentOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


def moment_out(moment: Moment) -> MomentOut:
    return MomentOut.model_validate(moment_to_dict(moment))


@dataclass(frozen=True, slots=True)
class MomentQuery:
    wallet: str | None
    kinds: tuple[MomentKind, ...] | None
    since: int | None
    until: int | None
    min_severity: Decimal | None
    limit: int
    after: MomentCursor | None
    fingerprint: str


def parse_time(value: str, field: str) -> int:
    """Unix seconds from `1700000000` or ISO-8601 (`2024-01-02T03:04:05Z`; no offset means UTC)."""
    text = value.strip()
    if _UNIX.fullmatch(text):
        return int(Decimal(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError([FieldError(field, "must be ISO-8601 or unix seconds")]) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def check_wallet(wallet: str, field: str) -> str:
    """`wallet` if it is a base58 32-byte public key, else a 422 naming `field`."""
    try:
        Pubkey.from_string(wallet)
    except ValueError:
        raise ValidationError([FieldError(field, "is not a base58 Solana address")]) from None
    return wallet


async def wallet_scope(
    deps: Deps, principal: Principal, wallet: str | None, *, among: Iterable[str] | None = None
) -> list[str] | None:
    """The wallets `principal` may read: None means all (a service), else a list (maybe empty).

    A user asking for a `wallet` they have not linked gets 403; `among` narrows the check
    to a few wallets without raising.
    """
    if principal.kind == "service":
        return None if wallet is None else [wallet]
    wanted = [wallet] if wallet is not None else among
    async with deps.connection("wallet_links") as conn:
        linked = await linked_wallets(conn, principal.id, among=wanted)
    if wallet is not None and wallet not in linked:
        raise ForbiddenError("this wallet is not linked to your account", internal=f"user {principal.id!r}")
    return sorted(linked)


def _parse_kinds(values: list[str] | None) -> tuple[MomentKind, ...] | None:
    if not values:
        return None
    names = [name.strip().upper() for value in values for name in value.split(",") if name.strip()]
    allowed = ", ".join(kind.value for kind in MomentKind)
    unknown = [name for name in names if name not in MomentKind.__members__]
    if unknown or not names:
        raise ValidationError([FieldError("query.kinds", f"unknown kind(s) {', '.join(unknown)}; allowed: {allowed}")])
    return tuple(dict.fromkeys(MomentKind(name) for name in names))


def _tag(detected_at: int, moment_id: str, fingerprint: str) -> str:
    message = f"{detected_at}|{moment_id}|{fingerprint}".encode()
    return hashlib.blake2b(message, key=_CURSOR_KEY, digest_size=12).hexdigest()


def encode_cursor(after: MomentCursor, fingerprint: str) -> str:
    raw = orjson.dumps([after.detected_at, after.id, _tag(after.detected_at, after.id, fingerprint)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(token: str, fingerprint: str) -> MomentCursor:
    invalid = ValidationError([FieldError("query.cursor", "is not a cursor issued for this listing and these filters")])
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise invalid from None
    match decoded:
        case [int(detected_at), str(moment_id), str(tag)] if not isinstance(detected_at, bool) and len(moment_id) <= 128:
            if hmac.compare_digest(tag, _tag(detected_at, moment_id, fingerprint)):
                return MomentCursor(detected_at, moment_id)
    raise invalid


async def moment_query(
    wallet: Annotated[str | None, Query(description="only this wallet (base58)", max_length=64)] = None,
    kinds: Annotated[
        list[str] | None,
        Query(description="kinds to include: comma-separated and/or repeated (`kinds=S2E,RUG&kinds=BHD`)"),
    ] = None,
    since: Annotated[str | None, Query(description="detected at or after: ISO-8601 or unix seconds")] = None,
    until: Annotated[str | None, Query(description="detected before: ISO-8601 or unix seconds")] = None,
    min_severity: Annotated[Decimal | None, Query(ge=0, le=1, description="0..1")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")] = None,
) -> MomentQuery:
    """The listing filters, validated together: every bad field is reported in one 422 (`async`: no thread hop)."""
    errors: list[FieldError] = []

    def attempt(parse: Callable[[], Any]) -> Any:
        try:
            return parse()
        except ValidationError as exc:
            errors.extend(exc.errors)
            return None

    parsed: dict[str, Any] = {
        "wallet": None if wallet is None else attempt(lambda: check_wallet(wallet, "query.wallet")),
        "kinds": attempt(lambda: _parse_kinds(kinds)),
        "since": None if since is None else attempt(lambda: parse_time(since, "query.since")),
        "until": None if until is None else attempt(lambda: parse_time(until, "query.until")),
    }
    if errors:
        raise ValidationError(errors)
    if parsed["since"] is not None and parsed["until"] is not None and parsed["until"] <= parsed["since"]:
        raise ValidationError([FieldError("query.until", "must be later than since")])
    kinds_key = ",".join(sorted(k.value for k in parsed["kinds"] or ()))
    fingerprint = f"{parsed['wallet']}|{kinds_key}|{parsed['since']}|{parsed['until']}|{min_severity}"
    return MomentQuery(
        wallet=parsed["wallet"], kinds=parsed["kinds"], since=parsed["since"], until=parsed["until"],
        min_severity=min_severity, limit=limit,
        after=decode_cursor(cursor, fingerprint) if cursor else None, fingerprint=fingerprint,
    )


async def page_of_moments(
    deps: Deps, query: MomentQuery, wallets: list[str] | None
) -> tuple[list[Moment], str | None]:
    """One page within `wallets` (from `wallet_scope`), and the next page's cursor (None on the last page)."""
    if wallets is not None and not wallets:
        return [], None
    async with deps.connection("list_moments") as conn:
        rows = await list_moments(
            conn,
            wallet=query.wallet if wallets is None else None,
            wallets=wallets,
            kinds=query.kinds,
            since=query.since,
            until=query.until,
            min_severity=query.min_severity,
            after=query.after,
            limit=query.limit + 1,  # one more tells whether there is a next page
        )
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return page, encode_cursor(MomentCursor.after(page[-1]), query.fingerprint) if more else None


@router.get(
    "/moments",
    response_model=MomentPage,
    summary="List moments, newest first",
    responses=problem_responses(401, 403, 422, 429),
    openapi_extra=ANY_CALLER,
)
async def list_moments_route(
    query: Annotated[MomentQuery, Depends(moment_query)],
    principal: Annotated[Principal, Depends(caller)],
    deps: Annotated[Deps, Depends(get_deps)],
) -> MomentPage:
    wallets = await wallet_scope(deps, principal, query.wallet)
    page, next_cursor = await page_of_moments(deps, query, wallets)
    return MomentPage(items=[moment_out(m) for m in page], next_cursor=next_cursor)


@router.get(
    "/moments/{moment_id}",
    response_model=MomentOut,
    summary="One moment by id",
    responses=problem_responses(401, 403, 404, 422, 429),
    openapi_extra=ANY_CALLER,
)
async def get_moment_route(
    moment_id: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,80}$", description="e.g. `s2e_<32 hex>`")],
    principal: Annotated[Principal, Depends(caller)],
    deps: Annotated[Deps, Depends(get_deps)],
) -> MomentOut:
    async with deps.connection("get_moment") as conn:
        moment = await get_moment(conn, moment_id)
    if moment is not None and principal.kind == "user":
        visible = await wallet_scope(deps, principal, None, among=[moment.wallet])
        moment = moment if visible else None
    if moment is None:
        raise NotFoundError(f"no moment {moment_id!r}")
    return moment_out(moment)

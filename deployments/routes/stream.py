"""`GET /v1/stream/moments`: Server-Sent Events of new and updated moments, resumable.

Each event is `id: <seq>`, `event: moment`, `data: <moment JSON>`; `seq` grows with every
insert and real change, so `Last-Event-ID` is a position in the change log. A client:

1. joins the replica's broadcast first (`MomentBroadcaster.subscribe`: LISTEN is active),
2. catches up from the database with every change after `Last-Event-ID` (pages by seq),
3. then relays the live queue, skipping the changes the catch-up already sent.

Subscribing before reading means a change committed during the catch-up is in the queue,
in the catch-up, or both, never in neither; the skip makes "both" arrive once. A client
too slow for its bounded queue gets a final `event: error` whose `id` is where to resume;
silence is broken by `: ping` comments. Users see their linked wallets (a `wallet` they did
not link is a 403; a wallet linked after connecting shows from the next connection),
services every wallet or the `wallet`s they name.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from core.codec import moment_to_dict
from core.errors import PROBLEM_TYPE_BASE, FieldError, ForbiddenError, OofError, ValidationError
from deployments.auth import Principal
from deployments.compose import Deps, get_deps
from deployments.linking import ConnectionSource, NamedConnections
from deployments.middleware import ANY_CALLER, caller
from deployments.problems import problem_responses
from deployments.routes.moments import check_wallet, wallet_scope
from deployments.sse import MomentBroadcaster, SseSettings, Subscription
from streams.storage import SequencedMoment, moments_after_seq

__all__ = ["router", "EventStreamResponse", "format_moment_event", "get_broadcaster", "moment_events"]

router = APIRouter(prefix="/v1", tags=["stream"])


def format_moment_event(item: SequencedMoment) -> bytes:
    return b"id: %d\nevent: moment\ndata: %s\n\n" % (item.seq, orjson.dumps(moment_to_dict(item.moment)))


def _error_event(resume_from: int | None, slug: str, detail: str) -> bytes:
    body = {"type": PROBLEM_TYPE_BASE + slug, "detail": detail, "resume_from": resume_from}
    head = b"" if resume_from is None else b"id: %d\n" % resume_from  # EventSource resumes from there
    return head + b"event: error\ndata: %s\n\n" % orjson.dumps(body)


async def moment_events(
    sub: Subscription,
    db: ConnectionSource,
    *,
    last_event_id: int | None,
    settings: SseSettings,
    on_close: Callable[[], None] = lambda: None,
) -> AsyncIterator[bytes]:
    """The SSE body of one subscribed client; closing it (client gone) runs `on_close`."""
    wallets = None if sub.wallets is None else sorted(sub.wallets)
    last = last_event_id
    try:
        yield b"retry: %d\n\n" % settings.retry_ms
        # The newest catch-up seqs: only these can reappear in the live queue, which holds at
        # most `client_buffer` events (more would have overflowed it).
        recent: deque[int] = deque(maxlen=settings.client_buffer + settings.page)
        after = last_event_id
        while after is not None and not sub.overflowed:
            async with db.acquire() as conn:
                page = await moments_after_seq(conn, after, wallets=wallets, limit=settings.page)
            for item in page:
                yield format_moment_event(item)
                recent.append(item.seq)
                last = item.seq
            after = page[-1].seq if len(page) == settings.page else None
        sent = set(recent)
        while not (sub.overflowed or sub.closed):
            item = await sub.next(settings.heartbeat_s)
            if item is None:
                yield b": ping\n\n"
            elif item.seq in sent:
                sent.discard(item.seq)  # the catch-up sent it already
            else:
                yield format_moment_event(item)
                last = item.seq
        if sub.overflowed:
            detail = "events arrived faster than you read them; reconnect to resume"
            yield _error_event(sub.resume_point(last), "stream-client-too-slow", detail)
        else:
            yield _error_event(sub.resume_point(last), "stream-closed", "the server is closing; reconnect to resume")
    except OofError as exc:  # the database went away mid-stream: headers are sent, so say it in-band
        yield _error_event(sub.resume_point(last), exc.type_slug, exc.detail)
    finally:
        on_close()


class EventStreamResponse(StreamingResponse):
    """`text/event-stream` that proxies must not buffer, and that always cleans up after itself.

    Starlette cancels a stream whose client left but does not close a generator parked at a
    `yield`, nor one that never started: both are closed here, and `on_close` runs either way.
    """

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], *, on_close: Callable[[], None] = lambda: None) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._events.aclose()  # type: ignore[attr-defined]
            finally:
                self._on_close()


def get_broadcaster(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> MomentBroadcaster:
    """The replica's broadcaster, made on first use (tests may preset `app.state.moment_broadcaster`)."""
    state = request.app.state
    broadcaster: MomentBroadcaster | None = getattr(state, "moment_broadcaster", None)
    if broadcaster is None:
        settings = getattr(state, "sse_settings", None) or SseSettings()
        broadcaster = MomentBroadcaster(NamedConnections(deps, "sse_moments"), settings, listen=deps.pool_metrics)
        state.moment_broadcaster = broadcaster
    return broadcaster


def _last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 19:
        raise ValidationError([FieldError("header.last-event-id", "must be the id of an event of this stream")])
    return int(text)


async def _scope(deps: Deps, principal: Principal, wanted: list[str]) -> frozenset[str] | None:
    if len(wanted) > 100:
        raise ValidationError([FieldError("query.wallet", "at most 100 wallets")])
    checked = [check_wallet(w, f"query.wallet.{i}") for i, w in enumerate(wanted)]
    if principal.kind == "service":
        return frozenset(checked) if checked else None
    linked = await wallet_scope(deps, principal, None, among=checked or None)
    if missing := sorted(set(checked) - set(linked or ())):
        raise ForbiddenError(f"not linked to your account: {', '.join(missing)}", internal=f"user {principal.id!r}")
    return frozenset(linked or ())


@router.get(
    "/stream/moments",
    response_class=Response,  # documents no JSON body for 200; errors still file as problem+json
    summary="Live moments as Server-Sent Events (resumable with Last-Event-ID)",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`event: moment` per change; `: ping` heartbeats"},
        **problem_responses(401, 403, 422, 429, 503),
    },
    openapi_extra=ANY_CALLER,
)
async def stream_moments(
    request: Request,
    principal: Annotated[Principal, Depends(caller)],
    deps: Annotated[Deps, Depends(get_deps)],
    broadcaster: Annotated[MomentBroadcaster, Depends(get_broadcaster)],
    wallet: Annotated[list[str] | None, Query(description="only these wallets (repeatable, at most 100)")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", description="resume after this event")] = None,
) -> EventStreamResponse:
    settings = getattr(request.app.state, "sse_settings", None) or SseSettings()
    after = _last_event_id(last_event_id)
    wallets = await _scope(deps, principal, wallet or [])
    # Subscribed before the response starts: a 503 (no LISTEN) is still a problem response.
    sub = await broadcaster.subscribe(wallets)

    def close() -> None:
        broadcaster.unsubscribe(sub)

    events = moment_events(
        sub, NamedConnections(deps, "sse_catch_up"), last_event_id=after, settings=settings, on_close=close
    )
    return EventStreamResponse(events, on_close=close)

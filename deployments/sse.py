"""Server-Sent Events of moments: one LISTEN per replica, fanned out to bounded per-client queues.

`MomentBroadcaster` holds the replica's only listening connection on `oof_moments`. A NOTIFY
carries just `{"id", "seq"}`, so the broadcaster reads the changed rows itself, by seq, once
per burst (not once per client), and offers each to every matching subscriber. Offers never
block: a subscriber whose queue is full is marked overflowed and dropped, and its stream
ends with an `error` event telling the client where to resume. Memory is bounded by
`client_buffer` per client whatever the client's speed.

`moment_events` is one client's stream: subscribe first, then catch up from the database
after `Last-Event-ID`, then go live, skipping live events the catch-up already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import structlog
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from core.codec import moment_to_dict
from core.errors import PROBLEM_TYPE_BASE, DatabaseError
from deployments.linking import ConnectionSource
from streams.storage import SequencedMoment, moments_after_seq

__all__ = [
    "CHANNEL",
    "EventStreamResponse",
    "MomentBroadcaster",
    "SseSettings",
    "Subscription",
    "format_moment_event",
    "moment_events",
]

CHANNEL = "oof_moments"
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SseSettings:
    heartbeat_s: float = 15.0  # a `: ping` comment after this much silence keeps proxies from timing out
    client_buffer: int = 256  # live events held per client before it counts as too slow
    page: int = 500  # rows per catch-up / fan-out query
    retry_ms: int = 2000  # EventSource reconnect delay we advertise
    ready_timeout_s: float = 5.0  # how long a new client waits for the listener connection
    keepalive_s: float = 30.0  # ping the listening connection this often to notice a dead server
    reconnect_max_s: float = 10.0  # cap of the listener's reconnect backoff


class Subscription:
    """One client's view of the broadcast: a bounded queue plus why it stopped, if it did."""

    def __init__(self, wallets: frozenset[str] | None, maxsize: int, head: int | None) -> None:
        self.wallets = wallets
        self.head = head  # the broadcaster's last fanned-out seq when this client joined
        self.first_seq: int | None = None  # first event queued for it
        self.overflowed = False
        self.closed = False
        self._queue: asyncio.Queue[SequencedMoment | None] = asyncio.Queue(maxsize)

    def wants(self, item: SequencedMoment) -> bool:
        return self.wallets is None or item.moment.wallet in self.wallets

    def offer(self, item: SequencedMoment) -> bool:
        """Queue without waiting; False (and overflowed) when the client has fallen behind."""
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            return False
        if self.first_seq is None:
            self.first_seq = item.seq
        return True

    def resume_point(self, last_sent: int | None) -> int | None:
        """Where a reconnect must resume so nothing queued but unsent is lost."""
        if last_sent is not None:
            return last_sent
        if self.head is not None:
            return self.head
        return None if self.first_seq is None else self.first_seq - 1

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)  # wakes a waiting reader; a full queue never blocks it anyway

    async def next(self, timeout: float) -> SequencedMoment | None:
        """The next event, or None after `timeout` seconds of silence or once closed."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None


class MomentBroadcaster:
    """LISTENs on `oof_moments` once and fans moments out to subscribers.

    `connect` opens the dedicated listening connection; `db` lends connections for reading
    rows. Started lazily by the first subscriber (or explicitly by `start`).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        db: ConnectionSource,
        settings: SseSettings = SseSettings(),
        *,
        remember: int = 10_000,
    ) -> None:
        self._connect = connect
        self._db = db
        self._settings = settings
        self._subscribers: set[Subscription] = set()
        self._notified: set[int] = set()
        self._recent: deque[int] = deque(maxlen=remember)  # seqs already fanned out, newest last
        self._recent_set: set[int] = set()
        self.last_seq: int | None = None  # highest seq fanned out so far
        self._resync = False
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.drains = 0  # fan-out passes, for tests and metrics

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="moment-broadcaster")
        try:
            await asyncio.wait_for(self._ready.wait(), self._settings.ready_timeout_s)
        except TimeoutError:
            raise DatabaseError("the moment stream is not available", internal="LISTEN connection not ready") from None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in list(self._subscribers):
            sub.close()
        self._subscribers.clear()

    async def subscribe(self, wallets: frozenset[str] | None = None) -> Subscription:
        """Join the broadcast; returns only once LISTEN is active, so nothing after it is missed."""
        await self.start()
        sub = Subscription(wallets, self._settings.client_buffer, self.last_seq)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    # --- the listening loop -------------------------------------------------------------------

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._notified.add(int(orjson.loads(payload)["seq"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("sse.bad_notify_payload", payload=payload[:200])
            self._resync = True  # we cannot tell what changed: rescan from our position
        self._wake.set()

    async def _run(self) -> None:
        delay = 0.1
        while True:
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                conn = await self._connect()
                conn.add_termination_listener(lambda _c: (lost.set(), self._wake.set()))
                await conn.add_listener(CHANNEL, self._on_notify)
                if self.last_seq is not None:
                    self._resync = True  # rows committed while we were not listening
                    self._wake.set()
                self._ready.set()
                delay = 0.1
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(self._wake.wait(), self._settings.keepalive_s)
                    except TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=self._settings.keepalive_s)
                        continue
                    self._wake.clear()
                    await self._drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect and rescan
                log.warning("sse.listener_failed", error=f"{type(exc).__name__}: {exc}", retry_in_s=delay)
            finally:
                self._ready.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.reconnect_max_s)

    async def _drain(self) -> None:
        """Read what the notifications announced and offer it to subscribers."""
        notified, self._notified = self._notified, set()
        fresh = {seq for seq in notified if seq not in self._recent_set}
        resync, self._resync = self._resync, False
        if not fresh and not resync:
            return
        if self.last_seq is None:
            # Nothing fanned out yet: our position is just before the oldest announced change.
            self.last_seq = min(fresh) - 1 if fresh else None
        try:
            async with self._db.acquire() as conn:
                if self.last_seq is not None and (resync or any(seq > self.last_seq for seq in fresh)):
                    await self._fan_out_range(conn, self.last_seq)
                # A seq at or below our position committed late (transactions commit out of seq
                # order): read that row alone; if it has changed again since, its newer seq comes
                # with its own notification.
                for seq in sorted(s for s in fresh if s not in self._recent_set and s <= (self.last_seq or 0)):
                    rows = await moments_after_seq(conn, seq - 1, limit=1)
                    if rows and rows[0].seq == seq:
                        self._fan_out(rows[0])
        except Exception:
            self._notified |= fresh  # try again on the next wake-up
            self._resync = self._resync or resync
            raise
        self.drains += 1

    async def _fan_out_range(self, conn: Any, after: int) -> None:
        while True:
            page = await moments_after_seq(conn, after, limit=self._settings.page)
            for item in page:
                self._fan_out(item)
            if len(page) < self._settings.page:
                return
            after = page[-1].seq

    def _fan_out(self, item: SequencedMoment) -> None:
        if item.seq in self._recent_set:
            return
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(item.seq)
        self._recent_set.add(item.seq)
        self.last_seq = item.seq if self.last_seq is None else max(self.last_seq, item.seq)
        for sub in list(self._subscribers):
            if sub.wants(item) and not sub.offer(item):
                self._subscribers.discard(sub)  # too slow: it gets nothing more, its stream ends
                log.info("sse.client_dropped", reason="buffer_full", buffer=self._settings.client_buffer)


# --- one client's stream ------------------------------------------------------------------------


def format_moment_event(item: SequencedMoment) -> bytes:
    return b"id: %d\nevent: moment\ndata: %s\n\n" % (item.seq, orjson.dumps(moment_to_dict(item.moment)))


def _error_event(resume_from: int | None, slug: str, detail: str) -> bytes:
    body = {"type": PROBLEM_TYPE_BASE + slug, "detail": detail, "resume_from": resume_from}
    head = b"" if resume_from is None else b"id: %d\n" % resume_from  # the client reconnects from there
    return head + b"event: error\ndata: %s\n\n" % orjson.dumps(body)


async def moment_events(
    broadcaster: MomentBroadcaster,
    db: ConnectionSource,
    *,
    wallets: frozenset[str] | None,
    last_event_id: int | None,
    settings: SseSettings,
) -> AsyncIterator[bytes]:
    """The SSE body for one client; closing the iterator (client gone) unsubscribes it."""
    sub = await broadcaster.subscribe(wallets)
    try:
        yield b"retry: %d\n\n" % settings.retry_ms
        last = last_event_id
        # The newest catch-up seqs; only these can reappear in the live queue, which holds at
        # most `client_buffer` events (older ones would have overflowed it).
        recent: deque[int] = deque(maxlen=settings.client_buffer + settings.page)
        after = last_event_id
        while after is not None and not sub.overflowed:
            async with db.acquire() as conn:
                page = await moments_after_seq(
                    conn, after, wallets=None if wallets is None else sorted(wallets), limit=settings.page
                )
            for item in page:
                yield format_moment_event(item)
                recent.append(item.seq)
                last = item.seq
            after = page[-1].seq if len(page) == settings.page else None
        sent = set(recent)
        while True:
            if sub.overflowed:
                yield _error_event(
                    sub.resume_point(last), "stream-client-too-slow",
                    "events arrived faster than you read them; reconnect to resume",
                )
                return
            if sub.closed:
                yield _error_event(sub.resume_point(last), "stream-closed", "the server is shutting down; reconnect to resume")
                return
            item = await sub.next(settings.heartbeat_s)
            if item is None:
                if not sub.closed:
                    yield b": ping\n\n"
                continue
            if item.seq in sent:
                sent.discard(item.seq)  # already sent by the catch-up
                continue
            yield format_moment_event(item)
            last = item.seq
    finally:
        broadcaster.unsubscribe(sub)


class EventStreamResponse(StreamingResponse):
    """`text/event-stream` that never lets proxies buffer it, and always closes its iterator.

    Starlette cancels a stream whose client left but does not close the generator when it was
    parked at a `yield`; closing it here runs its `finally` (unsubscribe) right away.
    """

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> None:
        super().__init__(
            content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
        )
        self._events = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()

"""Server-Sent Events of moments: one LISTEN per replica, fanned out to bounded per-client queues.

`MomentBroadcaster` holds the replica's only listening connection on `oof_moments`. A NOTIFY
carries just `{"id", "seq"}`, so the broadcaster reads the changed rows itself, by seq, once
per burst (not once per client), and offers each to every matching subscriber. Offers never
block: a subscriber whose queue is full is marked overflowed and dropped, and its stream
ends with an `error` event telling the client where to resume. Memory is bounded by
`client_buffer` per client whatever the client's speed.

One client's stream (catch-up, then live) is `deployments.routes.stream.moment_events`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from core.errors import DatabaseError
from deployments.linking import ConnectionSource
from streams.cancel import cancel_and_wait
from streams.storage import SequencedMoment, moments_after_seq

__all__ = ["CHANNEL", "MomentBroadcaster", "SseSettings", "Subscription"]

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
    idle_close_s: float = 60.0  # release the listening connection after this long without clients


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
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None


class MomentBroadcaster:
    """LISTENs on `oof_moments` once and fans moments out to subscribers.

    `db` lends connections for reading rows; `listen` (default: `db`) lends the one held for
    LISTEN. Started by the first subscriber; after `idle_close_s` without subscribers it
    gives the listening connection back and starts afresh with the next one.
    """

    def __init__(
        self,
        db: ConnectionSource,
        settings: SseSettings = SseSettings(),
        *,
        listen: ConnectionSource | None = None,
        remember: int = 10_000,
    ) -> None:
        self._db = db
        self._listen = listen or db
        self._settings = settings
        self._subscribers: set[Subscription] = set()
        self._recent: deque[int] = deque(maxlen=remember)  # seqs already fanned out, newest last
        self._reset()
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle_since = 0.0

    def _reset(self) -> None:
        self._notified: set[int] = set()
        self._recent.clear()
        self._recent_set: set[int] = set()
        self.last_seq: int | None = None  # highest seq fanned out so far
        self._resync = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def listening(self) -> bool:
        return self._task is not None and self._ready.is_set()

    async def start(self) -> None:
        """Listen (if not yet) and return once LISTEN is active; 503 if it cannot be."""
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()  # per run: a finishing run must not clear its successor's
            self._task = asyncio.create_task(self._run(self._ready), name="moment-broadcaster")
        try:
            await asyncio.wait_for(self._ready.wait(), self._settings.ready_timeout_s)
        except TimeoutError:
            raise DatabaseError("the moment stream is not available", internal="LISTEN connection not ready") from None

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
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
        if not self._subscribers:
            self._idle_since = asyncio.get_running_loop().time()

    def _idle(self) -> bool:
        idle = asyncio.get_running_loop().time() - self._idle_since
        return not self._subscribers and idle >= self._settings.idle_close_s

    # --- the listening loop -------------------------------------------------------------------

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._notified.add(int(orjson.loads(payload)["seq"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("sse.bad_notify_payload", payload=payload[:200])
            self._resync = True  # we cannot tell what changed: rescan from our position
        self._wake.set()

    async def _run(self, ready: asyncio.Event) -> None:
        delay = 0.1
        self._idle_since = asyncio.get_running_loop().time()
        while True:
            try:
                async with self._listen.acquire() as conn:
                    lost = asyncio.Event()
                    conn.add_termination_listener(lambda _c: (lost.set(), self._wake.set()))
                    await conn.add_listener(CHANNEL, self._on_notify)
                    try:
                        if self.last_seq is not None:
                            self._resync = True  # rows committed while we were not listening
                            self._wake.set()
                        ready.set()
                        delay = 0.1
                        if await self._serve(conn, lost):
                            return
                    finally:
                        ready.clear()
                        if not lost.is_set():
                            # Must not raise: it could replace a CancelledError and keep us alive.
                            with contextlib.suppress(Exception):
                                await conn.remove_listener(CHANNEL, self._on_notify)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect and rescan
                log.warning("sse.listener_failed", error=f"{type(exc).__name__}: {exc}", retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.reconnect_max_s)

    async def _serve(self, conn: Any, lost: asyncio.Event) -> bool:
        """Drain on every wake-up until the connection is lost (False) or nobody listened for a while (True)."""
        while not lost.is_set():
            try:
                async with asyncio.timeout(min(self._settings.keepalive_s, self._settings.idle_close_s)):
                    await self._wake.wait()
            except TimeoutError:
                if self._idle():
                    # Decided synchronously: a subscriber arriving from here on starts a new run.
                    self._task = None
                    self._reset()
                    return True
                await conn.fetchval("SELECT 1", timeout=self._settings.keepalive_s)  # notice a dead server
                continue
            self._wake.clear()
            await self._drain()
        return False

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

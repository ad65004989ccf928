"""The reconnect / backfill policy shared by the websocket sources (helius, logs).

A source splits its wallets into groups, one connection each. Per group, forever:
connect and subscribe first (live notifications wait in the socket or client buffer), then
report the break as a `Gap` and backfill every wallet from its cursor, then pump live
notifications; on any connection failure wait a capped, jittered exponential backoff and
start over. What a connection is (raw `websockets` or solana-py's client) is the only
thing a concrete source provides: `open_session(wallets)`.

`watch(wallets)` adds wallets to a running source: they form new groups on new connections
(existing ones are never re-subscribed, so nothing they carry is interrupted). A group reads
its wallets' stored cursors before its first connection, so an added wallet follows the
same rule as a wallet watched from the start: with a cursor it is backfilled from there,
without one it is live from its first subscription on.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from solana.rpc.jsonrpc import SolanaJsonRpcError
from websockets.exceptions import WebSocketException

from core.errors import ExternalServiceError
from streams.backfill import missing_entries
from streams.base import Emit, Gap, SourceStats
from streams.cancel import cancel_all
from streams.rpc import RpcClient
from streams.sources._delivery import CursorGet, CursorSet, Delivery, Hit, MemoryCursors

__all__ = ["LivePolicy", "ConnectionLost", "Session", "LiveSource", "backoff_delay"]

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class LivePolicy:
    """Tunables of a live source; the defaults suit mainnet, tests shrink the delays."""

    batch_size: int = 100  # RawTx per emit
    dedup_size: int = 100_000  # signatures remembered for dedup
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_jitter: float = 0.5  # this fraction of each delay is randomised
    stable_after_s: float = 30.0  # a connection that lived this long resets the backoff
    watchdog_s: float | None = None  # no frame for this long = dead socket (subscribes to slots)
    ping_interval_s: float = 20.0  # Helius wants one a minute; idle sockets die after 10 min
    open_timeout_s: float = 10.0
    queue_size: int = 10_000  # notifications a client may buffer before dropping (logs)
    skip_failed: bool = False
    tracked_poll_s: float = 5.0  # the pipeline looks for newly tracked wallets to `watch` this often
    joint_catch_up_s: float = 30.0  # at start, groups wait this long for each other to backfill as one


class ConnectionLost(Exception):
    """The session cannot go on (watchdog, unreadable frame on a strict client, refusal)."""


class Session(Protocol):
    """One connected, subscribed socket."""

    @property
    def dropped(self) -> int:
        """Notifications the client discarded so far; an increase is a gap."""
        ...

    async def receive(self) -> list[Hit]:
        """Hits of the next frame ([] for frames without transactions); raises when the socket is gone."""
        ...


# Everything that means "this connection is over, try another"; anything else is a bug or
# the consumer failing, and ends `run`.
RECONNECTABLE: tuple[type[BaseException], ...] = (
    ConnectionLost,
    OSError,
    TimeoutError,
    WebSocketException,
    SolanaJsonRpcError,
    ExternalServiceError,
)


def backoff_delay(attempt: int, policy: LivePolicy, rand: Callable[[], float] = random.random) -> float:
    """Capped exponential delay with the last `backoff_jitter` of it randomised."""
    ceiling = min(policy.backoff_max_s, policy.backoff_initial_s * 2 ** min(attempt, 32))
    return ceiling * (1 - policy.backoff_jitter * rand())


class LiveSource:
    """Base of the websocket sources: `run` keeps every wallet group connected until `stop`."""

    def __init__(
        self,
        wallets: Sequence[str],
        rpc: RpcClient,
        *,
        max_per_socket: int,
        policy: LivePolicy | None = None,
        cursor_get: CursorGet | None = None,
        cursor_set: CursorSet | None = None,
        encoding: str = "json",
        own_rpc: bool = False,
    ) -> None:
        if not wallets:
            raise ValueError("a live source needs at least one wallet")
        self.wallets = tuple(dict.fromkeys(wallets))
        self.max_per_socket = max_per_socket
        self.policy = policy or LivePolicy()
        self.stats = SourceStats()
        self.rpc = rpc
        self._own_rpc = own_rpc
        memory = MemoryCursors()
        self.delivery = Delivery(
            rpc,
            self.stats,
            cursor_get=cursor_get or memory.get,
            cursor_set=cursor_set or memory.set,
            batch_size=self.policy.batch_size,
            dedup_size=self.policy.dedup_size,
            encoding=encoding,
        )
        self.groups = self._split(self.wallets)
        self._watched = set(self.wallets)
        self._emit: Emit | None = None  # set while `run` runs: `watch` starts loops with it
        self._loops: set[asyncio.Task[None]] = set()
        self._failed: asyncio.Future[None] | None = None
        self._started = 0

    def open_session(self, wallets: Sequence[str]) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    @property
    def watched(self) -> AbstractSet[str]:
        """Every wallet watched (read-only view; `watch` adds to it)."""
        return self._watched

    def watch(self, wallets: Iterable[str]) -> tuple[str, ...]:
        """Watch `wallets` too; returns those not watched before (now in new groups).

        While `run` runs their connections start at once; before, `run` starts them with the
        others. Call it from the event loop `run` runs on.
        """
        added = tuple(w for w in dict.fromkeys(wallets) if w not in self._watched)
        if not added:
            return ()
        self._watched.update(added)
        self.wallets += added
        groups = self._split(added)
        self.groups += groups
        if self._emit is not None:
            for group in groups:
                self._start(group)
        log.info("source_watch_added", wallets=len(added), groups=len(groups), running=self._emit is not None)
        return added

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Until `stop`: then every connection is cancelled where it stands, even inside `emit`.

        Nothing is lost by that: cursors only move after `emit` returned, so whatever was cut
        off is backfilled on the next start (at-least-once; downstream dedups by signature).
        """
        self._failed = asyncio.get_running_loop().create_future()
        self._emit = emit
        stopper = asyncio.create_task(stop.wait())
        try:
            joint = _JointCatchUp(len(self.groups), self.policy.joint_catch_up_s) if len(self.groups) > 1 else None
            for group in self.groups:
                self._start(group, joint)
            waiting: list[asyncio.Future[Any]] = [stopper, self._failed]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if self._failed.done():
                self._failed.result()  # a loop only ends by raising: the consumer failed, or a bug
        finally:
            failed, self._emit, self._failed = self._failed, None, None  # teardown errors are no failure
            failed.cancel()
            await cancel_all([*self._loops, stopper])
            if self._own_rpc:
                await self.rpc.aclose()

    def _split(self, wallets: tuple[str, ...]) -> list[tuple[str, ...]]:
        size = self.max_per_socket
        return [wallets[i : i + size] for i in range(0, len(wallets), size)]

    def _start(self, group: tuple[str, ...], joint: _JointCatchUp | None = None) -> None:
        assert self._emit is not None
        task = asyncio.create_task(_GroupLoop(self, group, joint).run(self._emit),
                                   name=f"source-group-{self._started}")
        self._started += 1
        self._loops.add(task)
        task.add_done_callback(self._loop_ended)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        self._loops.discard(task)
        if task.cancelled():
            return
        error = task.exception() or RuntimeError(f"{task.get_name()} returned")
        if self._failed is not None and not self._failed.done():
            self._failed.set_exception(error)


class _GroupLoop:
    """Connect → Gap + backfill → live, again and again, for one group of wallets."""

    def __init__(self, source: LiveSource, wallets: Sequence[str], joint: _JointCatchUp | None = None) -> None:
        self.source, self.wallets, self.joint = source, tuple(wallets), joint
        self.policy, self.stats, self.delivery = source.policy, source.stats, source.delivery
        self.last_slot: int | None = None
        self.watch_since: int | None = None  # slot of the first connection: backfill floor for cursor-less wallets

    async def run(self, emit: Emit) -> None:
        # Per group, not per source: a group `watch` added loads only its own wallets' cursors.
        await self.delivery.load_cursors(self.wallets)
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                # Read before subscribing: a floor no live notification can be older than.
                now = await self.source.rpc.get_slot()
                async with self.source.open_session(self.wallets) as session:
                    await self._catch_up(emit, now, after_gap=self.watch_since is not None)
                    log.info("source_live", wallets=len(self.wallets), since_slot=self.watch_since)
                    await self._pump(session, emit)
            except RECONNECTABLE as exc:
                self.stats.reconnects += 1
                log.warning("source_disconnected", error=f"{type(exc).__name__}: {exc}", attempt=attempt)
            if time.monotonic() - started >= self.policy.stable_after_s:
                attempt = 0
            await asyncio.sleep(backoff_delay(attempt, self.policy))
            attempt += 1

    async def _catch_up(self, emit: Emit, now: int, *, after_gap: bool) -> None:
        # Subscribed already: what the backfill finds may also arrive live; dedup absorbs it.
        if self.watch_since is None:
            self.watch_since = now
        if after_gap:
            await emit([Gap(self.last_slot, now, self.wallets)])
        # Every wallet's gap first, then one slot-ordered delivery: wallet by wallet, the first
        # wallet's catch-up would carry event time past the others' missed transactions (late
        # input to the engine; older than its dedup horizon, dropped as stale).
        merged: dict[str, Hit] = {}
        for wallet in self.wallets:
            cursor = self.delivery.cursor(wallet)
            if cursor is None and not after_gap:
                continue  # first connection and nothing seen yet: live from here on
            entries = await missing_entries(
                self.source.rpc,
                wallet,
                cursor.signature if cursor else None,
                min_slot=None if cursor else self.watch_since,
            )
            found = [e for e in entries if not (self.policy.skip_failed and e.err is not None)]
            if found:
                log.info("source_backfill", wallet=wallet, missing=len(found))
            for e in found:  # a transaction of several watched wallets is one hit for all of them
                seen = merged.get(e.signature)
                merged[e.signature] = Hit(e.signature, e.slot, None, (*seen.wallets, wallet) if seen else (wallet,))
        hits = sorted(merged.values(), key=_slot_order)
        joint, self.joint = self.joint, None  # only the first catch-up is joint
        if joint is not None:
            await joint.deliver(hits, lambda every: self.delivery.deliver(every, emit, backfill=True))
            self._saw(max((hit.slot for hit in hits), default=None))
        elif hits:
            self._saw(await self.delivery.deliver(hits, emit, backfill=True))

    async def _pump(self, session: Session, emit: Emit) -> None:
        dropped = 0  # from the session's start: drops during the catch-up are gaps too
        while True:
            if self.policy.watchdog_s is None:
                hits = await session.receive()
            else:
                try:
                    hits = await asyncio.wait_for(session.receive(), self.policy.watchdog_s)
                except TimeoutError:
                    raise ConnectionLost(f"no frame for {self.policy.watchdog_s} s") from None
            self.stats.received += len(hits)
            if session.dropped > dropped:
                # Backfill before these hits move the cursors past what the client discarded.
                self.stats.dropped += session.dropped - dropped
                dropped = session.dropped
                log.warning("source_notifications_dropped", total=dropped)
                await self._catch_up(emit, await self.source.rpc.get_slot(), after_gap=True)
            if hits:
                self._saw(await self.delivery.deliver(hits, emit))

    def _saw(self, slot: int | None) -> None:
        if slot is not None and (self.last_slot is None or slot > self.last_slot):
            self.last_slot = slot


def _slot_order(hit: Hit) -> tuple[int, str]:
    return (hit.slot, hit.signature)


class _JointCatchUp:
    """The first catch-up of the groups a source starts with, delivered as one slot-ordered run.

    A restart after downtime finds every connection behind: backfilled group by group (each
    on its own connection, concurrently), one group's newest transactions would carry event
    time past the others' older ones. So each starting group hands its gap in here; once all
    have (or `wait_s` passed), one of them delivers the union in slot order while the others
    wait before they pump live notifications. A group arriving after that, or whose union
    delivery failed, delivers its own hits as before (its cursors never moved, so nothing is
    skipped).
    """

    def __init__(self, groups: int, wait_s: float) -> None:
        self.waiting, self.wait_s = groups, wait_s
        self.hits: dict[str, Hit] = {}
        self.all_in, self.done = asyncio.Event(), asyncio.Event()
        self.taken = self.failed = False

    async def deliver(self, hits: Sequence[Hit], deliver: Callable[[list[Hit]], Awaitable[Any]]) -> None:
        if self.taken:
            await self._own(hits, deliver)
            return
        for hit in hits:
            seen = self.hits.get(hit.signature)
            self.hits[hit.signature] = hit if seen is None else Hit(
                hit.signature, hit.slot, hit.result, (*seen.wallets, *hit.wallets))
        self.waiting -= 1
        if self.waiting <= 0:
            self.all_in.set()
        try:
            await asyncio.wait_for(self.all_in.wait(), self.wait_s)
        except TimeoutError:
            log.warning("source_joint_catch_up_timeout", waiting=self.waiting)
        if not self.taken:
            self.taken = True
            try:
                every = sorted(self.hits.values(), key=_slot_order)
                log.info("source_joint_catch_up", transactions=len(every))
                await deliver(every)
            except BaseException:
                self.failed = True
                raise
            finally:
                self.done.set()
            return
        await self.done.wait()
        if self.failed:
            await self._own(hits, deliver)

    @staticmethod
    async def _own(hits: Sequence[Hit], deliver: Callable[[list[Hit]], Awaitable[Any]]) -> None:
        if hits:
            await deliver(list(hits))

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

The watched wallets' token accounts are followed too (`_follow`; `follow_token_accounts`):
`follow` adds them to the newest group's live connection while it has room (one more
subscription, nothing re-subscribed), and an account without a cursor is backfilled from
the slot it was found in.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from solana.rpc.jsonrpc import SolanaJsonRpcError
from websockets.exceptions import WebSocketException

from core.errors import ExternalServiceError
from streams.backfill import missing_entries
from streams.base import Emit, Gap, SourceStats, TokenAccount
from streams.cancel import cancel_all
from streams.rpc import RpcClient
from streams.sources._delivery import CursorGet, CursorSet, Delivery, Hit, MemoryCursors
from streams.sources._follow import FollowSave, TokenAccountFollower
from streams.sources._joint import JointCatchUp, slot_order

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
    follow_token_accounts: bool = True  # watch the watched wallets' token accounts too (`_follow`)
    follow_delay_s: float = 0.2  # token accounts found within this long go out as one subscription


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

    async def add(self, addresses: Sequence[str]) -> None:
        """Subscribe `addresses` too, on this connection."""
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
        token_accounts: Sequence[TokenAccount] = (),
        on_follow: FollowSave | None = None,
    ) -> None:
        if not wallets:
            raise ValueError("a live source needs at least one wallet")
        self.wallets = tuple(dict.fromkeys(wallets))
        self.owners = set(self.wallets)  # the wallets themselves (`wallets` also holds followed accounts)
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
        following = self.policy.follow_token_accounts
        self.followed = {t.account: t for t in token_accounts if t.owner in self.owners} if following else {}
        self.follower = (TokenAccountFollower(self.owners, self.followed.values(), on_follow,
                                              self.policy.follow_delay_s, rpc) if following else None)
        self.wallets += tuple(a for a in self.followed if a not in self.owners)
        self.groups = self._split(self.wallets)
        self._watched = set(self.wallets)
        self._group_loops: list[_GroupLoop] = []
        self._emit: Emit | None = None  # set while `run` runs: `watch` starts loops with it
        self._loops: set[asyncio.Task[None]] = set()
        self._failed: asyncio.Future[None] | None = None
        self._started = 0

    def open_session(self, wallets: Sequence[str]) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    @property
    def watched(self) -> AbstractSet[str]:
        """Every address watched: wallets and followed token accounts (read-only view)."""
        return self._watched

    def since(self, address: str) -> int | None:
        """The slot a followed token account is backfilled from when it has no cursor (wallets: None)."""
        followed = self.followed.get(address)
        return None if followed is None else followed.since_slot

    def watch(self, wallets: Iterable[str]) -> tuple[str, ...]:
        """Watch `wallets` too; returns those not watched before (now in new groups).

        While `run` runs their connections start at once; before, `run` starts them with the
        others. Call it from the event loop `run` runs on.
        """
        added = tuple(w for w in dict.fromkeys(wallets) if w not in self._watched)
        if not added:
            return ()
        self.owners.update(added)
        groups = self._add_groups(added)
        log.info("source_watch_added", wallets=len(added), groups=len(groups), running=self._emit is not None)
        return added

    async def follow(self, accounts: dict[str, TokenAccount]) -> None:
        """Follow token accounts: on the newest group's live connection while it has room, the
        rest in new groups; each backfilled from its `since_slot` unless it has a cursor."""
        new = tuple(a for a in accounts if a not in self._watched)
        if not new:
            return
        self.followed.update((a, accounts[a]) for a in new)
        newest = self._group_loops[-1] if self._group_loops and self._emit is not None else None
        room = self.max_per_socket - len(newest.wallets) if newest is not None else 0
        joined, rest = new[: max(room, 0)], new[max(room, 0) :]
        if joined:
            self._watched.update(joined)
            self.wallets += joined
            self.groups[-1] += joined
        groups = self._add_groups(rest) if rest else []
        log.info("source_token_accounts_followed", accounts=len(new), joined=len(joined), new_groups=len(groups))
        if joined and newest is not None:
            await newest.add(joined)

    def _add_groups(self, addresses: tuple[str, ...]) -> list[tuple[str, ...]]:
        self._watched.update(addresses)
        self.wallets += addresses
        groups = self._split(addresses)
        self.groups += groups
        if self._emit is not None:
            for group in groups:
                self._start(group)
        return groups

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Until `stop`: then every connection is cancelled where it stands, even inside `emit`.

        Nothing is lost by that: cursors only move after `emit` returned, so whatever was cut
        off is backfilled on the next start (at-least-once; downstream dedups by signature).
        """
        self._failed = asyncio.get_running_loop().create_future()
        self._emit = emit if self.follower is None else self.follower.wrap(emit)
        stopper = asyncio.create_task(stop.wait())
        try:
            joint = JointCatchUp(len(self.groups), self.policy.joint_catch_up_s) if len(self.groups) > 1 else None
            for group in self.groups:
                self._start(group, joint)
            if self.follower is not None:
                self._track(asyncio.create_task(self.follower.run(self.follow), name="source-follower"))
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

    def _start(self, group: tuple[str, ...], joint: JointCatchUp | None = None) -> None:
        assert self._emit is not None
        loop = _GroupLoop(self, group, joint)
        self._group_loops.append(loop)
        self._track(asyncio.create_task(loop.run(self._emit), name=f"source-group-{self._started}"))
        self._started += 1

    def _track(self, task: asyncio.Task[None]) -> None:
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

    def __init__(self, source: LiveSource, wallets: Sequence[str], joint: JointCatchUp | None = None) -> None:
        self.source, self.wallets, self.joint = source, tuple(wallets), joint
        self.policy, self.stats, self.delivery = source.policy, source.stats, source.delivery
        self.last_slot: int | None = None
        self.watch_since: int | None = None  # slot of the first connection: backfill floor for cursor-less wallets
        self.session: Session | None = None  # while connected and subscribed
        self.emit: Emit | None = None

    async def add(self, addresses: tuple[str, ...]) -> None:
        """Watch `addresses` too (followed token accounts): subscribed on the live connection,
        or by the next one; then backfilled from their cursors or `since` slots."""
        self.wallets += addresses
        await self.delivery.load_cursors(addresses)
        if self.session is not None:
            try:
                await self.session.add(addresses)
            except RECONNECTABLE as exc:  # the connection is going; the next one subscribes every address
                log.warning("source_add_failed", error=f"{type(exc).__name__}: {exc}")
        attempt = 0
        while self.emit is not None:  # until the backfill went through: it covers what came before the subscription
            try:
                hits = await self._missing(addresses, after_gap=False)
                if hits:
                    self._saw(await self.delivery.deliver(hits, self.emit, backfill=True))
                return
            except RECONNECTABLE as exc:
                log.warning("source_add_backfill_failed", error=f"{type(exc).__name__}: {exc}", attempt=attempt)
            await asyncio.sleep(backoff_delay(attempt, self.policy))
            attempt += 1

    async def run(self, emit: Emit) -> None:
        # Per group, not per source: a group `watch` added loads only its own wallets' cursors.
        self.emit = emit
        await self.delivery.load_cursors(self.wallets)
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                # Read before subscribing: a floor no live notification can be older than.
                now = await self.source.rpc.get_slot()
                if self.watch_since is None and self.source.follower is not None:  # first connection
                    self.source.follower.look_up(self.wallets, since_slot=now + 1)  # `now` and older: history
                subscribing = self.wallets
                async with self.source.open_session(subscribing) as session:
                    self.session = session
                    try:
                        if len(self.wallets) > len(subscribing):  # `add` ran while this connection opened
                            await session.add(self.wallets[len(subscribing) :])
                        await self._catch_up(emit, now, after_gap=self.watch_since is not None)
                        log.info("source_live", wallets=len(self.wallets), since_slot=self.watch_since)
                        await self._pump(session, emit)
                    finally:
                        self.session = None
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
        hits = await self._missing(self.wallets, after_gap=after_gap)
        joint, self.joint = self.joint, None  # only the first catch-up is joint
        if joint is not None:
            await joint.deliver(hits, lambda every: self.delivery.deliver(every, emit, backfill=True))
            self._saw(max((hit.slot for hit in hits), default=None))
        elif hits:
            self._saw(await self.delivery.deliver(hits, emit, backfill=True))

    async def _missing(self, addresses: Sequence[str], *, after_gap: bool) -> list[Hit]:
        # Every address's gap first, then one slot-ordered delivery: address by address, the
        # first one's catch-up would carry event time past the others' missed transactions
        # (late input to the engine; older than its dedup horizon, dropped as stale).
        merged: dict[str, Hit] = {}
        for address in addresses:
            cursor, since = self.delivery.cursor(address), self.source.since(address)
            if cursor is None and since is None and not after_gap:
                continue  # a wallet's first connection and nothing seen yet: live from here on
            entries = await missing_entries(
                self.source.rpc,
                address,
                cursor.signature if cursor else None,
                min_slot=None if cursor else since if since is not None else self.watch_since,
            )
            found = [e for e in entries if not (self.policy.skip_failed and e.err is not None)]
            if found:
                log.info("source_backfill", wallet=address, missing=len(found))
            for e in found:  # a transaction of several watched addresses is one hit for all of them
                seen = merged.get(e.signature)
                merged[e.signature] = Hit(e.signature, e.slot, None, (*seen.wallets, address) if seen else (address,))
        return sorted(merged.values(), key=slot_order)

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

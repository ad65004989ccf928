"""Pure batching and routing: which shard and price actor gets what, for one batch of slots.

No Ray here (unit-tested without it). Routing is `core.routing.shard_for` — a stable
digest — for wallets (→ shard) and for mints (→ price actor, the mint's *owner*).

Per batch the ingest plans, for each shard, the *candidate* mints it might watch (what it
watched at its last report plus every mint its views touch since, SOL included: the idle
detector watches SOL on a shard's first wallet) and, per slot, the mints whose history it
might ask for. Supersets are harmless (the shard filters by what it really watches);
never missing one is what keeps the result exact.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from typing import Any

from actors.protocol import PriceInput, ShardInput, SlotRun
from core.mints import SOL_MINT
from core.routing import shard_for

__all__ = ["Router", "WatchTracker", "SignatureWindow", "view_mints", "plan_batch", "reference_key"]


def reference_key(mint: str, t: int, wallet: str) -> str:
    """What a BAD_ROUTE reference depends on: price actors answer by this key, shards match on it."""
    return f"{mint}|{t}|{wallet}"


def view_mints(view: Any) -> set[str]:
    """Mints a shard could start watching because of this view."""
    mints = {SOL_MINT, *view.flows}
    for trade in view.trades:
        mints.add(trade.mint)
        mints.add(trade.quote_mint)
    return mints


class Router:
    """Stable wallet → shard and mint → price actor maps (memoised digests)."""

    def __init__(self, shard_count: int, price_shards: int) -> None:
        self.shard_count, self.price_shards = shard_count, price_shards
        self._shards: dict[str, int] = {}
        self._owners: dict[str, int] = {}

    def shard(self, wallet: str) -> int:
        shard = self._shards.get(wallet)
        if shard is None:
            shard = self._shards[wallet] = shard_for(wallet, self.shard_count)
        return shard

    def owner(self, mint: str) -> int:
        owner = self._owners.get(mint)
        if owner is None:
            owner = self._owners[mint] = shard_for(mint, self.price_shards)
        return owner


class WatchTracker:
    """Per shard: the subscriptions it last reported plus the mints of every later batch."""

    def __init__(self, shard_count: int) -> None:
        self.reported: list[frozenset[str]] = [frozenset()] * shard_count
        self.reported_batch = [-1] * shard_count
        self.pending: list[deque[tuple[int, set[str]]]] = [deque() for _ in range(shard_count)]

    def candidates(self, shard: int, batch_mints: set[str]) -> set[str]:
        out = set(self.reported[shard])
        for _, mints in self.pending[shard]:
            out |= mints
        return out | batch_mints

    def note(self, shard: int, batch: int, mints: set[str]) -> None:
        self.pending[shard].append((batch, mints))

    def report(self, shard: int, batch: int, watched: frozenset[str] | None) -> None:
        """`watched` as of the end of `batch`; older (replayed) reports change nothing."""
        if batch <= self.reported_batch[shard]:
            return
        self.reported_batch[shard] = batch
        if watched is not None:
            self.reported[shard] = watched
        pending = self.pending[shard]
        while pending and pending[0][0] <= batch:
            pending.popleft()

    def reset(self, shard: int, watched: frozenset[str], batch: int) -> None:
        self.reported[shard], self.reported_batch[shard] = watched, batch
        self.pending[shard].clear()


class SignatureWindow:
    """The last `size` signatures seen: drops redeliveries before they are fetched or parsed."""

    def __init__(self, size: int = 200_000) -> None:
        self._size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def fresh(self, signatures: Iterable[str]) -> list[str]:
        """The signatures not seen before (each once), remembering them."""
        out: list[str] = []
        seen = self._seen
        for sig in signatures:
            if sig in seen:
                continue
            seen[sig] = None
            out.append(sig)
        while len(seen) > self._size:
            seen.popitem(last=False)
        return out


def plan_batch(
    number: int,
    runs: Sequence[SlotRun],
    *,
    router: Router,
    tracked: frozenset[str] | None,
    tracker: WatchTracker,
    checkpoint: bool,
) -> tuple[PriceInput, list[ShardInput]]:
    """Split slot runs into the price actors' shared input and one input per shard."""
    n = router.shard_count
    slots = tuple((run.slot, run.block_time) for run in runs)
    trades: dict[int, tuple[Any, ...]] = {}
    dests: dict[int, tuple[int, ...]] = {}
    wants: dict[int, dict[int, frozenset[str]]] = {}
    views: list[dict[int, list[Any]]] = [{} for _ in range(n)]
    touched: list[set[str]] = [set() for _ in range(n)]
    traded: set[str] = set()
    for i, run in enumerate(runs):
        slot_trades: list[Any] = []
        slot_dests: list[int] = []
        slot_wants: dict[int, set[str]] = {}
        for view in run.views:
            dest = router.shard(view.wallet) if tracked is None or view.wallet in tracked else -1
            if dest >= 0:
                views[dest].setdefault(i, []).append(view)
                mints = view_mints(view)
                slot_wants.setdefault(dest, set()).update(mints)
                touched[dest] |= mints
            if not view.failed:
                for trade in view.trades:
                    slot_trades.append(trade)
                    slot_dests.append(dest)
                    traded.add(trade.mint)
                    traded.add(trade.quote_mint)
        if slot_trades:
            trades[i], dests[i] = tuple(slot_trades), tuple(slot_dests)
        if slot_wants:
            wants[i] = {shard: frozenset(m) for shard, m in slot_wants.items()}
    candidates = []
    for shard in range(n):
        candidates.append(frozenset(tracker.candidates(shard, touched[shard]) & traded))
        if touched[shard]:
            tracker.note(shard, number, touched[shard])
    price_input = PriceInput(number, slots, trades, dests, wants, tuple(candidates), checkpoint)
    return price_input, [ShardInput(number, slots, views[j], checkpoint) for j in range(n)]

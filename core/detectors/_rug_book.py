"""RUG's per-mint bookkeeping: watches grouped by state, parked watches, the high stack.

Eligible watches of a mint that share a state share a `_Group` (the same `p_high`; for
candidates also the same crossing), because every later tick moves them alike: a tick
then costs O(log groups), not O(wallets). Eligible groups are kept sorted by `p_high` in
two parallel lists (`keys`, `groups`): found by bisection, never by hashing a Decimal
(whose hash is a modular exponentiation). Watches whose cost basis is below the minimum
are *parked* outside the groups; a monotonic stack of per-slot highs answers "highest
tick after slot s" when one becomes eligible again.
"""

from __future__ import annotations

import bisect
import heapq
from decimal import Decimal

__all__ = ["Watch", "Group", "MintRug"]

ZERO = Decimal(0)
_STACK_PRUNE = 64


class Watch:
    """One (wallet, mint) holding episode since its entry BUY."""

    __slots__ = ("key", "wallet", "mint", "sig", "slot", "t", "detected_at", "group", "mid", "ref_price", "ref_slot")

    def __init__(self, key: str, wallet: str, mint: str, sig: str, slot: int, t: int) -> None:
        self.key, self.wallet, self.mint, self.sig, self.slot, self.t = key, wallet, mint, sig, slot, t
        self.detected_at = 0  # 0 = never emitted
        self.group: Group | None = None  # None = parked
        self.mid: str | None = None  # moment id, computed at the first emission
        self.ref_price = ZERO  # parked: p_high up to and including `ref_slot`
        self.ref_slot = 0


class Group:
    __slots__ = ("gid", "candidate", "p_high", "members", "since", "deadline", "p_low")

    def __init__(self, gid: int, p_high: Decimal) -> None:
        self.gid, self.candidate, self.p_high = gid, False, p_high
        self.members: dict[str, Watch] = {}
        self.since = self.deadline = 0  # candidates: crossing time and confirmation deadline
        self.p_low = ZERO  # candidates: lowest p_now since crossing


class MintRug:
    """RUG state of one mint."""

    __slots__ = ("groups", "keys", "cands", "parked", "floors", "stack", "p_now", "t_now")

    def __init__(self) -> None:
        self.keys: list[Decimal] = []  # eligible, not collapsed groups: their p_high, sorted (all distinct)
        self.groups: list[Group] = []  # ... and the groups, in the same order
        self.cands: dict[int, Group] = {}  # collapsed, awaiting confirmation
        self.parked: dict[str, Watch] = {}
        self.floors: list[tuple[int, str]] = []  # heap (ref_slot, key) of parked watches, lazily cleaned
        self.stack: list[tuple[int, Decimal]] = []  # (slot, high), highs decreasing
        self.p_now = ZERO
        self.t_now = 0

    def empty(self) -> bool:
        return not self.groups and not self.cands and not self.parked

    def insert(self, w: Watch, p_high: Decimal, new_gid: int) -> bool:
        """Put an eligible watch in the group of `p_high`; True if that used `new_gid`."""
        keys = self.keys
        i = bisect.bisect_left(keys, p_high)
        created = i == len(keys) or keys[i] != p_high
        if created:
            group = Group(new_gid, p_high)
            keys.insert(i, p_high)
            self.groups.insert(i, group)
        else:
            group = self.groups[i]
        group.members[w.key] = w
        w.group = group
        return created

    def park(self, w: Watch, p_high: Decimal, slot: int) -> None:
        w.group, w.ref_price, w.ref_slot = None, p_high, slot
        parked = self.parked
        parked[w.key] = w
        heapq.heappush(self.floors, (slot, w.key))
        if len(self.floors) > 2 * len(parked) + _STACK_PRUNE:  # drop entries of unparked watches
            self.floors = [f for f in self.floors if f[1] in parked and parked[f[1]].ref_slot == f[0]]
            heapq.heapify(self.floors)

    def detach(self, w: Watch) -> Group | None:
        """Take `w` out of its group (or the parking); returns a candidate group it emptied."""
        group = w.group
        if group is None:
            del self.parked[w.key]
            if not self.parked:
                self.stack.clear()
                self.floors.clear()
            return None
        del group.members[w.key]
        if group.members:
            return None
        if group.candidate:
            del self.cands[group.gid]
            return group
        i = bisect.bisect_left(self.keys, group.p_high)
        del self.keys[i]
        del self.groups[i]
        return None

    def push_high(self, slot: int, high: Decimal) -> None:
        """Record a slot's high for parked watches (only needed while some are parked)."""
        stack = self.stack
        while stack and stack[-1][1] <= high:
            stack.pop()
        stack.append((slot, high))
        n = len(stack)
        if n > _STACK_PRUNE and not n % 16:  # pruning never changes an answer: try it every 16 entries
            floors, parked = self.floors, self.parked
            while floors and (floors[0][1] not in parked or parked[floors[0][1]].ref_slot != floors[0][0]):
                heapq.heappop(floors)
            if floors:  # nobody parked asks about slots at or before the oldest ref slot
                del stack[:bisect.bisect_left(stack, (floors[0][0] + 1,))]  # entries with slot <= the floor

    def high_after(self, slot: int) -> Decimal | None:
        """Highest tick in slots after `slot` (None if none)."""
        stack = self.stack
        i = bisect.bisect_left(stack, (slot + 1,))  # the first entry with a slot after `slot`
        return stack[i][1] if i < len(stack) else None

    def raise_to(self, high: Decimal) -> None:
        """Every group below `high` now has p_high = high: merge them."""
        groups, keys = self.groups, self.keys
        cut = bisect.bisect_left(keys, high)
        if cut == 1 and (len(keys) == 1 or keys[1] != high):  # one group below: it just moves up
            group = groups[0]
            group.p_high = keys[0] = high
            return
        merged = groups[:cut]
        del keys[:cut]
        del groups[:cut]
        if keys and keys[0] == high:  # a group at exactly `high` already: it joins (its key stays)
            merged.append(groups[0])
        else:
            keys.insert(0, high)
            groups.insert(0, merged[0])
        base = merged[0]  # the largest group absorbs the others (the first of the largest)
        for group in merged:
            if len(group.members) > len(base.members):
                base = group
        for group in merged:
            if group is not base:
                for w in group.members.values():
                    w.group = base
                base.members.update(group.members)
        base.p_high = high
        groups[0] = base

    def collapsed(self, close: Decimal, factor: Decimal) -> list[Group]:
        """Take out the groups whose p_high * factor >= close (they just crossed)."""
        keys, groups, out = self.keys, self.groups, []
        while keys and keys[-1] * factor >= close:
            keys.pop()
            out.append(groups.pop())
        return out

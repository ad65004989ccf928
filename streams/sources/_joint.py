"""The first catch-up of a source's starting connections, delivered as one slot-ordered run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from streams.sources._delivery import Hit

__all__ = ["JointCatchUp", "slot_order"]

log = structlog.get_logger()


def slot_order(hit: Hit) -> tuple[int, str]:
    return (hit.slot, hit.signature)


class JointCatchUp:
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
                every = sorted(self.hits.values(), key=slot_order)
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

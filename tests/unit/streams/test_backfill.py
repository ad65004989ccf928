"""missing_signatures / missing_entries paging against a fake node (SOLANA_NOTES §3)."""

from __future__ import annotations

import pytest

from streams.backfill import missing_entries, missing_signatures
from streams.rpc import SignatureInfo


class FakeNode:
    """getSignaturesForAddress over one wallet's history (oldest first), with real bound semantics."""

    def __init__(
        self, count: int, *, first_slot: int = 100, inclusive_until: bool = False, ignores_before: bool = False
    ) -> None:
        self.history = [SignatureInfo(f"sig{i:03d}", first_slot + i) for i in range(count)]
        self.calls: list[tuple[str | None, str | None, int]] = []
        self.inclusive_until, self.ignores_before = inclusive_until, ignores_before  # misbehaving nodes

    async def get_signatures_for_address(
        self, address: str, before: str | None = None, until: str | None = None, limit: int = 1000
    ) -> list[SignatureInfo]:
        self.calls.append((before, until, limit))
        newest_first = list(reversed(self.history))
        if before is not None and not self.ignores_before:
            newest_first = newest_first[[i.signature for i in newest_first].index(before) + 1 :]
        page: list[SignatureInfo] = []
        for info in newest_first:
            if len(page) == limit:
                break
            if info.signature == until:
                page.extend([info] if self.inclusive_until else [])
                break
            page.append(info)
        return page


async def test_pages_with_before_until_the_cursor_and_returns_oldest_first() -> None:
    # Arrange: 25 signatures; the cursor is the 6th, so 19 are missing.
    node = FakeNode(25)

    # Act
    missing = await missing_entries(node, "W", "sig005", limit=5)

    # Assert
    assert [i.signature for i in missing] == [f"sig{i:03d}" for i in range(6, 25)]
    assert [before for before, _, _ in node.calls] == [None, "sig020", "sig015", "sig010"]
    assert {(until, limit) for _, until, limit in node.calls} == {("sig005", 5)}


async def test_a_gap_of_exactly_one_page_asks_once_more_and_stops_on_the_empty_page() -> None:
    node = FakeNode(10)

    missing = await missing_entries(node, "W", "sig004", limit=5)

    assert [i.signature for i in missing] == [f"sig{i:03d}" for i in range(5, 10)]
    assert len(node.calls) == 2 and node.calls[1][0] == "sig005"


async def test_nothing_missing_is_one_call() -> None:
    node = FakeNode(3)

    assert await missing_signatures(node, "W", "sig002") == []
    assert node.calls == [(None, "sig002", 1000)]


async def test_without_a_cursor_the_slot_floor_bounds_the_walk() -> None:
    node = FakeNode(30, first_slot=100)

    missing = await missing_entries(node, "W", None, min_slot=120, limit=4)

    assert [i.slot for i in missing] == list(range(120, 130))
    assert len(node.calls) == 3  # stops inside the page that crosses the floor


async def test_a_node_returning_the_bound_itself_does_not_re_emit_it() -> None:
    assert await missing_signatures(FakeNode(5, inclusive_until=True), "W", "sig002") == ["sig003", "sig004"]


async def test_a_node_ignoring_before_cannot_loop_forever() -> None:
    node = FakeNode(10, ignores_before=True)

    await missing_entries(node, "W", None, min_slot=0, limit=3)

    assert len(node.calls) == 2


async def test_unknown_cursor_is_bounded_by_max_entries() -> None:
    node = FakeNode(50)

    missing = await missing_entries(node, "W", "pruned-long-ago", limit=10, max_entries=20)

    assert [i.signature for i in missing] == [f"sig{i:03d}" for i in range(30, 50)]


async def test_needs_a_bound() -> None:
    with pytest.raises(ValueError):
        await missing_entries(FakeNode(1), "W", None)

"""Delivery (dedup, fetch, emit, cursors) and the reconnect backoff, without sockets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from streams.base import RawTx, SourceItem, SourceStats
from streams.sources._delivery import Delivery, Hit, MemoryCursors, SignatureLru
from streams.sources._live import LivePolicy, backoff_delay


class FakeFetcher:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def get_transactions(self, signatures: Sequence[str], encoding: str = "json") -> Mapping[str, Any]:
        self.asked.append(list(signatures))
        return {sig: {"slot": 500 + i, "fetched": True} for i, sig in enumerate(signatures)}


def delivery(batch_size: int = 10) -> tuple[Delivery, FakeFetcher, MemoryCursors, list[list[SourceItem]]]:
    fetcher, cursors, batches = FakeFetcher(), MemoryCursors(), []
    made = Delivery(
        fetcher,
        SourceStats(),
        cursor_get=cursors.get,
        cursor_set=cursors.set,
        batch_size=batch_size,
        dedup_size=100,
        encoding="json",
    )
    return made, fetcher, cursors, batches


def hit(sig: str, slot: int, wallet: str = "W", result: dict[str, Any] | None = None) -> Hit:
    return Hit(sig, slot, result, (wallet,))


async def test_duplicates_are_emitted_once_and_only_signature_hits_are_fetched() -> None:
    # Arrange
    sink, fetcher, _, batches = delivery()

    async def emit(batch: Sequence[SourceItem]) -> None:
        batches.append(list(batch))

    # Act
    await sink.deliver([hit("a", 1, result={"slot": 1}), hit("b", 2), hit("a", 1)], emit)
    await sink.deliver([hit("b", 2), hit("c", 3)], emit)

    # Assert
    emitted = [item.signature for batch in batches for item in batch if isinstance(item, RawTx)]
    assert emitted == ["a", "b", "c"]
    assert fetcher.asked == [["b"], ["c"]]
    assert sink.stats.duplicates == 2 and sink.stats.emitted == 3


async def test_batches_respect_batch_size() -> None:
    sink, _, _, batches = delivery(batch_size=2)

    async def emit(batch: Sequence[SourceItem]) -> None:
        batches.append(list(batch))

    await sink.deliver([hit(f"s{i}", i, result={"slot": i}) for i in range(5)], emit)

    assert [len(b) for b in batches] == [2, 2, 1]


async def test_cursor_moves_only_after_emit_and_never_backwards() -> None:
    sink, _, cursors, _ = delivery()

    async def emit(batch: Sequence[SourceItem]) -> None:
        pass

    async def failing_emit(batch: Sequence[SourceItem]) -> None:
        raise RuntimeError("consumer down")

    await sink.deliver([hit("new", 9, result={"slot": 9}), hit("old", 3, result={"slot": 3})], emit)
    assert cursors.positions["W"] == ("new", 9)

    with pytest.raises(RuntimeError):
        await sink.deliver([hit("later", 12, result={"slot": 12})], failing_emit)
    assert cursors.positions["W"] == ("new", 9)
    assert "later" not in sink._seen  # re-delivered next time, not lost


async def test_a_duplicate_still_moves_the_other_wallets_cursor() -> None:
    sink, _, cursors, _ = delivery()

    async def emit(batch: Sequence[SourceItem]) -> None:
        pass

    await sink.deliver([hit("x", 5, "A", {"slot": 5})], emit)
    await sink.deliver([hit("x", 5, "B")], emit)

    assert cursors.positions == {"A": ("x", 5), "B": ("x", 5)}


async def test_fetched_slot_wins_over_the_notification_slot() -> None:
    sink, _, _, batches = delivery()

    async def emit(batch: Sequence[SourceItem]) -> None:
        batches.append(list(batch))

    await sink.deliver([hit("b", 1)], emit)

    [[item]] = batches
    assert isinstance(item, RawTx) and item.slot == 500 and item.result == {"slot": 500, "fetched": True}


async def test_loaded_cursors_come_from_the_callback() -> None:
    sink, _, cursors, _ = delivery()
    cursors.positions["W"] = ("persisted", None)

    await sink.load_cursors(["W", "V"])

    assert sink.cursor("W") is not None and sink.cursor("W").signature == "persisted"  # type: ignore[union-attr]
    assert sink.cursor("V") is None


def test_lru_forgets_the_oldest() -> None:
    seen = SignatureLru(2)
    for sig in ("a", "b", "a", "c"):
        seen.add(sig)
    assert "a" in seen and "c" in seen and "b" not in seen and len(seen) == 2


@pytest.mark.parametrize("attempt", range(0, 12))
def test_backoff_is_capped_exponential_with_jitter(attempt: int) -> None:
    policy = LivePolicy(backoff_initial_s=0.5, backoff_max_s=30.0, backoff_jitter=0.5)
    ceiling = min(30.0, 0.5 * 2**attempt)

    assert backoff_delay(attempt, policy, rand=lambda: 0.0) == pytest.approx(ceiling)
    assert backoff_delay(attempt, policy, rand=lambda: 1.0) == pytest.approx(ceiling / 2)
    assert ceiling / 2 <= backoff_delay(attempt, policy) <= ceiling

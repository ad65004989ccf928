"""The ingest's poll for wallets tracked while it runs (`actors.tracking`), without Ray."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from actors.tracking import poll_tracked, untracked


def test_untracked_is_what_is_missing_from_either_set_once_in_order() -> None:
    assert untracked(["c", "a", "b", "a"], {"a"}, {"a", "b"}) == ["c", "b"]
    assert untracked(["a", "b"], None, {"a"}) == ["b"]  # tracking everyone: only watching matters
    assert untracked(["a", "b"], {"a"}, None) == ["b"]  # a recording: only tracking matters
    assert untracked(["a"], None, None) == []


class _Remote:
    def __init__(self, answers: list[object]) -> None:
        self.answers = answers

    async def remote(self) -> list[str]:
        answer = self.answers.pop(0) if self.answers else []
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]


class _Sink:
    def __init__(self, answers: list[object]) -> None:
        self.tracked_wallets = _Remote(answers)


async def test_poll_hands_every_read_to_track_and_survives_failures() -> None:
    calls: list[list[str]] = []

    async def track(wallets: Sequence[str]) -> int:
        calls.append(list(wallets))
        if wallets == ["boom"]:
            raise RuntimeError("track failed")
        return len(wallets)

    sink = _Sink([["a"], ConnectionError("database down"), ["boom"], ["a", "b"]])
    task = asyncio.create_task(poll_tracked(sink, track, 0.001))
    async with asyncio.timeout(5):
        while len(calls) < 3:
            await asyncio.sleep(0.001)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert calls[:3] == [["a"], ["boom"], ["a", "b"]]

"""Event-time clock and window arithmetic."""

from __future__ import annotations

from core.windows import TimerQueue, Watermark, in_window, minute_of, period_bounds, period_closed, window_closed


def test_watermark_only_moves_forward() -> None:
    wm = Watermark()
    assert wm.advance(10, 1_000)
    assert not wm.advance(9, 999)  # older: ignored
    assert (wm.slot, wm.time) == (10, 1_000)
    assert wm.advance(11, None)  # no block time: only the slot moves
    assert (wm.slot, wm.time) == (11, 1_000)
    assert wm.advance(11, 1_005)
    assert not wm.advance(11, 1_005)
    assert wm.time_of(None) == 1_005 and wm.time_of(7) == 7


def test_watermark_round_trips() -> None:
    wm = Watermark(5, 50)
    assert Watermark.from_list(wm.to_list()) == wm


def test_look_ahead_window_includes_its_end_and_excludes_its_start() -> None:
    assert not in_window(100, 100, 200)
    assert in_window(101, 100, 200)
    assert in_window(200, 100, 200)
    assert not in_window(201, 100, 200)
    assert not window_closed(200, 200)  # a tick at the end may still come
    assert window_closed(200, 201)


def test_period_excludes_its_end() -> None:
    assert period_bounds(1_000, 0, 30) == (1_000, 1_030)
    assert period_bounds(1_000, 2, 30) == (1_060, 1_090)
    assert not period_closed(1_030, 1_029)
    assert period_closed(1_030, 1_030)


def test_minute_of() -> None:
    assert minute_of(59) == 0 and minute_of(60) == 1 and minute_of(3_599) == 59


def test_timer_queue_pops_in_due_then_insertion_order() -> None:
    q = TimerQueue()
    q.push(30, "c")
    q.push(10, "a")
    q.push(10, "b")
    assert q.next_due() == 10
    assert q.pop_due(10) == []  # strict: due == now is not yet due
    assert q.pop_due(10, strict=False) == [(10, "a"), (10, "b")]
    assert q.pop_due(31) == [(30, "c")]
    assert len(q) == 0 and q.next_due() is None


def test_timer_queue_round_trips() -> None:
    q = TimerQueue()
    for due, key in [(5, "x"), (3, "y"), (9, "z")]:
        q.push(due, key)
    copy = TimerQueue.from_dict(q.to_dict())
    assert copy.pop_due(100) == q.pop_due(100) == [(3, "y"), (5, "x"), (9, "z")]

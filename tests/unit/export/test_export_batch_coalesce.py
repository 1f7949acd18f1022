"""BatchCoalescer: due windows flushed together, per-key order, bounded memory."""

from __future__ import annotations

import asyncio
import time

import pytest

from agents.export.coalesce import BatchCoalescer
from streams.settings import Settings

WINDOW = 0.05


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[dict[str, list[int]]] = []
        self.delay = delay
        self.running: set[str] = set()
        self.overlaps = 0

    async def __call__(self, batches: list[tuple[str, list[int]]]) -> None:
        keys = {k for k, _ in batches}
        if keys & self.running:
            self.overlaps += 1
        self.running |= keys
        try:
            await asyncio.sleep(self.delay)
            self.calls.append({k: list(items) for k, items in batches})
        finally:
            self.running -= keys


async def test_windows_due_together_are_flushed_in_one_call() -> None:
    flush = Recorder()
    c: BatchCoalescer[str, int] = BatchCoalescer(WINDOW, flush, interval=0.01)
    for i in range(300):
        await c.add(f"sku:{i % 100}", i)
    await c.drain()
    assert len(flush.calls) == 1
    [got] = flush.calls
    assert len(got) == 100
    assert got["sku:7"] == [7, 107, 207]
    assert (c.items_in, c.flushes, c.pending) == (300, 1, 0)


async def test_a_key_waits_for_its_running_flush_and_keeps_order() -> None:
    flush = Recorder(delay=WINDOW * 3)
    c: BatchCoalescer[str, int] = BatchCoalescer(WINDOW, flush, interval=0.0)
    await c.add("a", 1)
    await asyncio.sleep(WINDOW * 1.5)  # a's flush is running now
    await c.add("a", 2)
    await c.add("b", 3)
    await c.drain()
    flat = [(k, items) for call in flush.calls for k, items in call.items()]
    assert [items for k, items in flat if k == "a"] == [[1], [2]]
    assert ("b", [3]) in flat
    assert flush.overlaps == 0


async def test_a_burst_never_holds_more_than_max_pending_items() -> None:
    held: list[int] = []
    c: BatchCoalescer[str, int]

    async def flush(batches: list[tuple[str, list[int]]]) -> None:
        held.append(c.pending)
        await asyncio.sleep(0.005)

    c = BatchCoalescer(0.01, flush, interval=0.0, max_pending=100, max_flushes=2)
    observed = 0
    for i in range(2_000):  # distinct keys, faster than the flushes
        await c.add(f"sku:{i}", i)
        observed = max(observed, c.pending)
    await c.drain()
    assert observed <= 100 and max(held) <= 100
    assert c.peak_pending == 100  # the bound was reached, so it was what held the burst
    assert (c.items_in, c.pending) == (2_000, 0)


async def test_a_failing_flush_is_counted_and_later_windows_still_flush() -> None:
    calls: list[list[str]] = []

    async def flush(batches: list[tuple[str, list[int]]]) -> None:
        calls.append([k for k, _ in batches])
        if len(calls) == 1:
            raise RuntimeError("boom")

    c: BatchCoalescer[str, int] = BatchCoalescer(0.0, flush, interval=0.0)
    await c.add("a", 1)
    await c.drain()
    await c.add("a", 2)
    await c.drain()
    assert calls == [["a"], ["a"]]
    assert (c.errors, c.pending) == (1, 0)
    await c.close()


def test_bad_arguments_are_refused() -> None:
    async def flush(batches: list[tuple[str, list[int]]]) -> None: ...

    with pytest.raises(ValueError):
        BatchCoalescer(-1, flush)
    with pytest.raises(ValueError):
        BatchCoalescer(1, flush, max_pending=0)


async def test_a_flush_that_raises_is_handed_to_on_error_and_the_next_ones_go_on() -> None:
    # issue 23 item 8: a failed flush's items must be settled (dead-lettered), not dropped
    failed: list[tuple[list[tuple[str, list[int]]], Exception]] = []
    flushed: list[str] = []

    async def flush(batches: list[tuple[str, list[int]]]) -> None:
        if any(k == "bad" for k, _ in batches):
            raise ValueError("not an entity key: ''")
        flushed.extend(k for k, _ in batches)

    async def on_error(batches: list[tuple[str, list[int]]], error: Exception) -> None:
        failed.append((batches, error))

    c: BatchCoalescer[str, int] = BatchCoalescer(WINDOW, flush, interval=0.0, on_error=on_error)
    await c.add("bad", 1)
    await c.drain()
    await c.add("good", 2)
    await c.drain()
    assert [(b, type(e)) for b, e in failed] == [([("bad", [1])], ValueError)]
    assert flushed == ["good"] and c.errors == 1 and c.pending == 0


class Timed:
    """A flush that notes when each key was flushed (seconds since ``start``)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.at: dict[str, float] = {}
        self.flushed = asyncio.Event()

    async def __call__(self, batches: list[tuple[str, list[int]]]) -> None:
        for key, _ in batches:
            self.at[key] = time.monotonic() - self.start
        self.flushed.set()


async def test_a_window_counts_from_when_its_first_event_was_received() -> None:
    # Received 1.8 s before it is read: its 2 s window closes 0.2 s after the read, not
    # 2 s after (the time in intake and on the events topic is not waited again).
    flush = Timed()
    c: BatchCoalescer[str, int] = BatchCoalescer(2.0, flush, interval=0.01)
    await c.add("old", 1, age=1.8)
    await asyncio.wait_for(c.drain(), 1.5)
    assert 0.15 <= flush.at["old"] < 1.5
    await c.close()


async def test_an_older_event_read_after_a_younger_one_is_not_held_behind_it() -> None:
    # The scheduler sleeps until the younger window is due; an older event read meanwhile
    # is due first and wakes it.
    flush = Timed()
    c: BatchCoalescer[str, int] = BatchCoalescer(2.0, flush, interval=0.01)
    await c.add("young", 1, age=0.0)
    await asyncio.sleep(0.05)  # the scheduler is asleep until "young" is due
    await c.add("old", 2, age=1.8)
    await asyncio.wait_for(flush.flushed.wait(), 1.5)
    assert "old" in flush.at and "young" not in flush.at
    await c.close()


async def test_an_age_is_held_within_zero_and_the_window() -> None:
    # A clock ahead of ours (negative age) never holds a window longer than the window; a
    # very old event (a backlog) is flushed at once, never "before now".
    flush = Timed()
    c: BatchCoalescer[str, int] = BatchCoalescer(1.0, flush, interval=0.01)
    await c.add("ahead", 1, age=-60.0)
    await c.add("backlog", 2, age=3600.0)
    await asyncio.wait_for(c.drain(), 5.0)
    assert flush.at["backlog"] < 0.5
    assert 0.95 <= flush.at["ahead"] < 3.0
    await c.close()


async def test_a_due_window_is_flushed_on_time_while_slow_flushes_run() -> None:
    # Slow flushes (a slow Query answer or produce acknowledgement) must not hold the next
    # due windows back: with the default limit, one window every few intervals, eight in
    # all, each starts its flush while every earlier flush is still running (the old
    # limit of four made the fifth one wait for a flush to end: here, for ever).
    window, interval = 0.05, 0.02
    started: dict[str, float] = {}
    release = asyncio.Event()

    async def slow(batches: list[tuple[str, list[int]]]) -> None:
        for key, _ in batches:
            started[key] = time.monotonic()
        await release.wait()

    c: BatchCoalescer[str, int] = BatchCoalescer(
        window, slow, interval=interval, max_flushes=Settings().export_max_flushes
    )
    added: dict[str, float] = {}
    for i in range(8):
        added[f"k{i}"] = time.monotonic()
        await c.add(f"k{i}", i)
        await asyncio.sleep(interval * 3)  # each window flushes on its own
    await asyncio.sleep(window + 0.5)
    late = {k: round(started[k] - t, 3) for k, t in added.items() if k in started}
    assert set(late) == set(added), f"not flushed while others run: {late}"
    assert all(v <= window + 0.5 for v in late.values()), late  # slack for a busy machine
    release.set()
    await c.drain()
    await c.close()

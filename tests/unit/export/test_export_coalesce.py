"""Per-key coalescing (agents.export.coalesce) on a real event loop with short windows."""

from __future__ import annotations

import asyncio
import time

import pytest

from agents.export.coalesce import Coalescer

WINDOW = 0.05


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, list[int], float]] = []
        self.delay = delay
        self.running: set[str] = set()
        self.overlaps = 0

    async def __call__(self, key: str, items: list[int]) -> None:
        if key in self.running:
            self.overlaps += 1
        self.running.add(key)
        try:
            await asyncio.sleep(self.delay)
            self.calls.append((key, list(items), time.monotonic()))
        finally:
            self.running.discard(key)


async def test_a_burst_for_one_key_is_flushed_once_with_every_item() -> None:
    flush = Recorder()
    c: Coalescer[str, int] = Coalescer(WINDOW, flush)
    started = time.monotonic()
    for i in range(50):
        await c.add("sku:1", i)
    await c.drain()
    assert [(k, items) for k, items, _ in flush.calls] == [("sku:1", list(range(50)))]
    assert flush.calls[0][2] - started >= WINDOW * 0.9  # waited for the window
    assert c.pending == 0
    assert (c.items_in, c.flushes) == (50, 1)


async def test_keys_are_flushed_separately() -> None:
    flush = Recorder()
    c: Coalescer[str, int] = Coalescer(WINDOW, flush)
    for i in range(10):
        await c.add(f"sku:{i % 3}", i)
    await c.drain()
    got = {k: items for k, items, _ in flush.calls}
    assert got == {"sku:0": [0, 3, 6, 9], "sku:1": [1, 4, 7], "sku:2": [2, 5, 8]}


async def test_the_window_starts_at_the_first_event_of_a_key() -> None:
    flush = Recorder()
    c: Coalescer[str, int] = Coalescer(WINDOW, flush)
    await c.add("a", 1)
    await asyncio.sleep(WINDOW * 0.5)
    await c.add("a", 2)  # inside a's window
    await asyncio.sleep(WINDOW * 1.5)
    await c.add("a", 3)  # a's first window is closed: a new one
    await c.drain()
    assert [items for _, items, _ in flush.calls] == [[1, 2], [3]]


async def test_items_arriving_during_a_flush_wait_for_it_and_keep_order() -> None:
    flush = Recorder(delay=WINDOW * 3)
    c: Coalescer[str, int] = Coalescer(WINDOW, flush)
    await c.add("a", 1)
    await asyncio.sleep(WINDOW * 1.5)  # a's flush is running now
    await c.add("a", 2)
    await c.add("a", 3)
    await c.drain()
    assert [items for _, items, _ in flush.calls] == [[1], [2, 3]]
    assert flush.overlaps == 0


async def test_a_failing_flush_is_counted_and_does_not_block_the_key() -> None:
    calls: list[list[int]] = []

    async def flush(key: str, items: list[int]) -> None:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("boom")

    c: Coalescer[str, int] = Coalescer(0.0, flush)
    await c.add("a", 1)
    await c.drain()
    await c.add("a", 2)
    await c.drain()
    assert calls == [[1], [2]]
    assert c.errors == 1
    assert c.pending == 0


async def test_add_blocks_while_max_pending_items_wait() -> None:
    release = asyncio.Event()

    async def flush(key: str, items: list[int]) -> None:
        await release.wait()

    c: Coalescer[str, int] = Coalescer(0.0, flush, max_pending=2)
    await c.add("a", 1)
    await c.add("b", 2)
    third = asyncio.create_task(c.add("c", 3))
    await asyncio.sleep(0.05)
    assert not third.done()
    release.set()
    await asyncio.wait_for(third, 1)
    await c.drain()
    assert c.pending == 0


def test_bad_arguments_are_refused() -> None:
    async def flush(key: str, items: list[int]) -> None: ...

    with pytest.raises(ValueError):
        Coalescer(-1, flush)
    with pytest.raises(ValueError):
        Coalescer(1, flush, max_pending=0)

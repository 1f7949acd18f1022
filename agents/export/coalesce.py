"""Per-key coalescing of events over a short window.

The first event of a key opens a batch; every event for that key that arrives within
``window`` seconds joins it; then ``flush(key, items)`` runs once for the whole batch.
So a burst of 50 notifications for one SKU costs one Query lookup, wherever the burst
starts (a fixed-interval ``stream.take`` would split a burst that straddles a tick).

Per key, flushes run one at a time and in order: events arriving while a key's flush
runs open the next batch, whose flush waits for the running one. A later lookup then
never produces before an earlier one, so the last record per key is the newest state.

``add`` applies back-pressure: with ``max_pending`` items waiting it blocks until
flushes make room, so a slow Query cannot make the worker buffer without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

Flush = Callable[[K, list[T]], Awaitable[None]]


@dataclass
class _Batch(Generic[T]):
    opened_at: float
    items: list[T] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Coalescer(Generic[K, T]):
    def __init__(
        self,
        window: float,
        flush: Flush[K, T],
        *,
        max_pending: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 0:
            raise ValueError("window must be >= 0")
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.window = window
        self._flush = flush
        self.max_pending = max_pending
        self._clock = clock
        self._open: dict[K, _Batch[T]] = {}  # batches still accepting items
        self._last: dict[K, asyncio.Task[None]] = {}  # newest flush task per key
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0  # items added and not yet flushed
        self._room = asyncio.Event()
        self._room.set()
        self.items_in = 0
        self.flushes = 0
        self.errors = 0

    @property
    def pending(self) -> int:
        return self._pending

    async def add(self, key: K, item: T) -> None:
        while self._pending >= self.max_pending:
            self._room.clear()
            await self._room.wait()
        self.items_in += 1
        self._pending += 1
        batch = self._open.get(key)
        if batch is not None:
            batch.items.append(item)
            return
        batch = _Batch(opened_at=self._clock(), items=[item])
        self._open[key] = batch
        previous = self._last.get(key)
        task = asyncio.create_task(self._run(key, batch, previous), name=f"coalesce-{key}")
        batch.task = task
        self._last[key] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: K, batch: _Batch[T], previous: asyncio.Task[None] | None) -> None:
        try:
            delay = batch.opened_at + self.window - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            # Close the batch: later items open the next one.
            if self._open.get(key) is batch:
                del self._open[key]
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            self.flushes += 1
            try:
                await self._flush(key, batch.items)
            except Exception:
                self.errors += 1
                log.exception("flush of %r (%d items) failed", key, len(batch.items))
        finally:
            if self._open.get(key) is batch:
                del self._open[key]
            if self._last.get(key) is batch.task:
                del self._last[key]
            self._pending -= len(batch.items)
            if self._pending < self.max_pending:
                self._room.set()

    async def drain(self) -> None:
        """Wait until every batch added so far has been flushed (shutdown, tests)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Cancel everything still waiting (its items stay unacknowledged upstream)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))

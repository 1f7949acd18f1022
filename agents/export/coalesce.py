"""Per-key coalescing of events over a short window.

The first event of a key opens a batch; every event for that key that arrives within
``window`` seconds joins it; then ``flush(key, items)`` runs once for the whole batch.
The window counts from when that first event was received (``add``'s ``age``), not from
when it was read: time spent in intake and on the events topic is not waited twice.
So a burst of 50 notifications for one SKU costs one Query lookup, wherever the burst
starts (a fixed-interval ``stream.take`` would split a burst that straddles a tick).

Per key, flushes run one at a time and in order: events arriving while a key's flush
runs open the next batch, whose flush waits for the running one. A later lookup then
never produces before an earlier one, so the last record per key is the newest state.

Every window that is due goes to one flush, so the keys of one flush can share Query
requests.

``add`` applies back-pressure: with ``max_pending`` items waiting it blocks until
flushes make room, so a slow Query cannot make the worker buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


BatchFlush = Callable[[list[tuple[K, list[T]]]], Awaitable[None]]
# Told about a flush that raised: it must settle the items (dead-letter them), or their
# offsets are never committed again.
FlushError = Callable[[list[tuple[K, list[T]]], Exception], Awaitable[None]]


@dataclass
class _Window(Generic[K, T]):
    key: K
    due: float
    items: list[T] = field(default_factory=list)


class BatchCoalescer(Generic[K, T]):
    """Per-key windows (see the module's docstring); every window that is due at a flush
    goes to one ``flush(batches)`` call, so its keys can share Query requests.

    A scheduler wakes at the earliest due window, and at most every ``interval`` seconds;
    each flush takes every window due by then or within the next ``interval`` (so a
    window lasts ``window`` give or take ``interval``). A
    key's window never flushes while an earlier window of the same key is still being
    flushed: it waits for the next flush, so per key the output stays in order.

    Memory: at most ``max_pending`` items are held (waiting, or in a running flush);
    ``add`` blocks beyond that, which stops the consumer and so bounds a burst.
    Flushes run concurrently, ``max_flushes`` at most (a flush holds every item of its
    windows until it returns).

    A flush that raises is handed to ``on_error`` with its windows (the enricher
    dead-letters what it did not settle), so one bad item never leaves its partition's
    offsets stuck.
    """

    def __init__(
        self,
        window: float,
        flush: BatchFlush[K, T],
        *,
        interval: float = 0.05,
        max_pending: int = 10_000,
        max_flushes: int = 4,
        clock: Callable[[], float] = time.monotonic,
        on_error: FlushError[K, T] | None = None,
    ) -> None:
        if window < 0 or interval < 0:
            raise ValueError("window and interval must be >= 0")
        if max_pending < 1 or max_flushes < 1:
            raise ValueError("max_pending and max_flushes must be >= 1")
        self.window = window
        self.interval = interval
        self.max_pending = max_pending
        self.max_flushes = max_flushes
        self._flush = flush
        self._on_error = on_error
        self._clock = clock
        self._open: dict[K, _Window[K, T]] = {}  # windows still taking items
        # open and closed windows, a heap by due time (ages differ: not in add order)
        self._queue: list[tuple[float, int, _Window[K, T]]] = []
        self._seq = itertools.count()  # ties keep the order of add
        self._busy: set[K] = set()  # keys in a running flush
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._in_flush = 0
        self._room = asyncio.Event()
        self._room.set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._scheduler: asyncio.Task[None] | None = None
        self.items_in = 0
        self.flushes = 0
        self.errors = 0
        self.peak_pending = 0

    @property
    def pending(self) -> int:
        """Items held: waiting in a window or in a running flush."""
        return self._pending

    @property
    def in_flush(self) -> int:
        return self._in_flush

    async def add(self, key: K, item: T, age: float = 0.0) -> None:
        """Hold ``item`` in ``key``'s window. ``age``: seconds since the item's event was
        received; a new window then closes ``window - age`` from now (never earlier than
        now, never later than ``window``: a skewed clock neither holds nor rushes it)."""
        while self._pending >= self.max_pending:
            self._room.clear()
            await self._room.wait()
        self.items_in += 1
        self._pending += 1
        self.peak_pending = max(self.peak_pending, self._pending)
        self._idle.clear()
        window = self._open.get(key)
        if window is None:
            window = _Window(key, self._clock() + self.window - min(max(age, 0.0), self.window))
            self._open[key] = window
            heapq.heappush(self._queue, (window.due, next(self._seq), window))
            if self._queue[0][2] is window:  # due first (an older event): wake the scheduler
                self._wake.set()
        window.items.append(item)
        if self._scheduler is None or self._scheduler.done():
            self._scheduler = asyncio.create_task(self._schedule(), name="coalesce-scheduler")

    async def _schedule(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = self._queue[0][0] - self._clock()
            if delay > 0:
                # until the earliest window is due, or an earlier one arrives
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue
            if len(self._tasks) >= self.max_flushes:
                await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
            batches = self._take_due()
            if batches:
                self._start(batches)
                await asyncio.sleep(self.interval)  # let the next due windows gather
            else:
                # every due window's key is busy: wait for a flush to end
                self._wake.clear()
                await self._wake.wait()

    def _take_due(self) -> list[_Window[K, T]]:
        # A window due within the next interval joins this flush: it closes at most that
        # much early instead of flushing alone an interval later (fewer, fuller groups).
        now = self._clock() + self.interval
        taken: list[_Window[K, T]] = []
        keys: set[K] = set()
        kept: list[_Window[K, T]] = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            window = heapq.heappop(queue)[2]
            if self._open.get(window.key) is window:
                del self._open[window.key]  # closed: later items open the next window
            if window.key in self._busy or window.key in keys:
                kept.append(window)  # after the key's running (or earlier) window
            else:
                keys.add(window.key)
                taken.append(window)
        for window in kept:
            heapq.heappush(queue, (window.due, next(self._seq), window))
        return taken

    def _start(self, windows: list[_Window[K, T]]) -> None:
        for window in windows:
            self._busy.add(window.key)
            self._in_flush += len(window.items)
        task = asyncio.create_task(self._run(windows), name="coalesce-flush")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, windows: list[_Window[K, T]]) -> None:
        count = sum(len(w.items) for w in windows)
        try:
            self.flushes += 1
            await self._flush([(w.key, w.items) for w in windows])
        except Exception as error:
            self.errors += 1
            log.exception("flush of %d keys (%d items) failed", len(windows), count)
            if self._on_error is not None:
                try:
                    await self._on_error([(w.key, w.items) for w in windows], error)
                except Exception:
                    log.exception("settling a failed flush of %d keys failed", len(windows))
        finally:
            for window in windows:
                self._busy.discard(window.key)
            self._in_flush -= count
            self._pending -= count
            if self._pending < self.max_pending:
                self._room.set()
            if self._pending == 0:
                self._idle.set()
            self._wake.set()

    async def drain(self) -> None:
        """Wait until every item added so far has been flushed (shutdown, tests)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Cancel the scheduler and running flushes (their items stay unacknowledged)."""
        tasks = [t for t in (self._scheduler, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

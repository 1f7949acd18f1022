"""A service that cannot go on without a partition it owns stops the worker, once.

The projection and the export reader open each partition they are assigned (its local
store, its digests); one that cannot be opened would be fetched and never processed, a
silent stall. They pause it, name it on ``/ready`` and call :meth:`StopWorker.partition_failed`:
one critical line, then the app's crash (set by whoever knows the app), scheduled and not
awaited, since stopping waits for the rebalance that is calling."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import TopicPartition

log = logging.getLogger(__name__)


class StopWorker:
    def __init__(self, what: str) -> None:
        self.what = what  # "projection", "export events": the log line's subject
        self.crash: Callable[[BaseException], Awaitable[None]] | None = None
        self._task: asyncio.Future[None] | None = None

    def partition_failed(self, tp: TopicPartition, error: BaseException) -> None:
        log.critical(
            "%s %s[%d] could not be opened, stopping the worker: %s: %s",
            self.what,
            tp.topic,
            tp.partition,
            type(error).__name__,
            error,
        )
        if self.crash is not None and self._task is None:
            self._task = asyncio.ensure_future(self.crash(error))

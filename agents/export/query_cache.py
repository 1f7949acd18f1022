"""A TTL cache for Query lookups that also shares lookups in flight.

Norce Query is not cached by Norce and is rate limited, so the export path asks it as
little as it can:

- reference data (price list heads) is kept for ``ttl`` seconds;
- concurrent callers asking for the same key while a lookup runs wait for that one
  lookup instead of starting their own (``ttl=0`` gives only this sharing);
- a failed lookup is not cached: the next caller tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._values: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._inflight: dict[K, asyncio.Future[V]] = {}
        self.loads = 0  # loader calls (for tests and metrics)
        self.hits = 0
        self.shared = 0  # callers that joined a lookup in flight

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` for a fresh cached value (may be None), else ``(False, None)``."""
        entry = self._values.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if self._clock() >= expires:
            del self._values[key]
            return False, None
        return True, value

    def get(self, key: K) -> V | None:
        return self.lookup(key)[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        self._values[key] = (self._clock() + self.ttl, value)
        self._values.move_to_end(key)
        while len(self._values) > self.max_entries:
            self._values.popitem(last=False)

    def invalidate(self, key: K | None = None) -> None:
        if key is None:
            self._values.clear()
        else:
            self._values.pop(key, None)

    async def get_or_load(self, key: K, loader: Callable[[], Awaitable[V]]) -> V:
        found, cached = self.lookup(key)
        if found:
            self.hits += 1
            return cached  # type: ignore[return-value]
        pending = self._inflight.get(key)
        if pending is not None:
            self.shared += 1
            # shield: one caller being cancelled must not cancel the others' lookup
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        self.loads += 1
        try:
            value = await loader()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # mark retrieved: nobody else may be waiting
            raise
        else:
            self.put(key, value)
            future.set_result(value)
            return value
        finally:
            self._inflight.pop(key, None)

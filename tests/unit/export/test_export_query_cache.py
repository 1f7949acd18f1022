"""TTL cache with lookups in flight shared (agents.export.query_cache)."""

from __future__ import annotations

import asyncio

import pytest

from agents.export.query_cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_values_are_kept_for_the_ttl_then_loaded_again() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10.0, clock=clock)
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        return loads

    assert await cache.get_or_load("k", load) == 1
    clock.now += 9.9
    assert await cache.get_or_load("k", load) == 1
    clock.now += 0.2
    assert await cache.get_or_load("k", load) == 2
    assert (cache.loads, cache.hits) == (2, 1)


async def test_none_is_a_cacheable_value() -> None:
    cache: TtlCache[str, int | None] = TtlCache(10.0)

    async def load() -> None:
        return None

    await cache.get_or_load("gone", load)
    await cache.get_or_load("gone", load)
    assert cache.loads == 1


async def test_concurrent_callers_share_one_lookup_in_flight() -> None:
    cache: TtlCache[str, str] = TtlCache(0)  # no caching: sharing only
    started = asyncio.Event()
    release = asyncio.Event()

    async def load() -> str:
        started.set()
        await release.wait()
        return "v"

    first = asyncio.create_task(cache.get_or_load("k", load))
    await started.wait()
    others = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(first, *others) == ["v"] * 21
    assert (cache.loads, cache.shared) == (1, 20)
    # ttl 0: the next call after the lookup ended asks again
    release.set()
    await cache.get_or_load("k", load)
    assert cache.loads == 2


async def test_a_failed_lookup_is_shared_but_not_cached() -> None:
    cache: TtlCache[str, str] = TtlCache(60.0)
    release = asyncio.Event()
    attempts = 0

    async def load() -> str:
        nonlocal attempts
        attempts += 1
        await release.wait()
        if attempts == 1:
            raise RuntimeError("429")
        return "ok"

    a = asyncio.create_task(cache.get_or_load("k", load))
    await asyncio.sleep(0)
    b = asyncio.create_task(cache.get_or_load("k", load))
    await asyncio.sleep(0)
    release.set()
    for task in (a, b):
        with pytest.raises(RuntimeError):
            await task
    assert await cache.get_or_load("k", load) == "ok"
    assert attempts == 2


async def test_the_oldest_entries_go_beyond_max_entries() -> None:
    cache: TtlCache[int, int] = TtlCache(60.0, max_entries=2)
    for i in range(3):
        await cache.get_or_load(i, lambda i=i: asyncio.sleep(0, result=i))
    assert cache.lookup(0) == (False, None)
    assert cache.lookup(2) == (True, 2)

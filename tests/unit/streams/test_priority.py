"""Bulk work steps back for urgent requests (orders, webhooks): between its slices it
waits until none is in flight, but never longer than its cap."""

from __future__ import annotations

import asyncio
import time

from streams.priority import step_back, urgent, urgent_in_flight


async def test_without_a_request_in_flight_it_only_yields() -> None:
    started = time.perf_counter()
    await step_back(1.0)
    assert time.perf_counter() - started < 0.5


async def test_it_waits_until_the_request_is_answered() -> None:
    answered = asyncio.Event()

    async def request() -> None:
        with urgent():
            await answered.wait()

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    assert urgent_in_flight()
    waiting = asyncio.create_task(step_back(5.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the slice waits while the request is in flight
    answered.set()
    await asyncio.wait_for(waiting, 1.0)  # and goes on as soon as it is answered
    await task
    assert not urgent_in_flight()


async def test_requests_that_never_stop_still_leave_the_bulk_work_its_slices() -> None:
    with urgent():
        started = time.perf_counter()
        await step_back(0.05)
        took = time.perf_counter() - started
    assert 0.04 <= took < 1.0

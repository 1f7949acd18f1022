"""Bulk work steps back for urgent requests (orders, webhooks): between its slices, while
one is in flight, it waits until the request is answered (``step_back``) or yields until
the request's ready steps have run without waiting out its I/O (``step_back_ready``),
never longer than its cap."""

from __future__ import annotations

import asyncio
import time

from streams import pacing
from streams.priority import step_back, step_back_ready, urgent, urgent_in_flight
from streams.settings import Settings


def busy(seconds: float) -> None:
    """CPU work of one step (a handler, an encode): holds the loop."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_without_a_request_in_flight_it_only_yields() -> None:
    started = time.perf_counter()
    await step_back(1.0)
    await step_back_ready(1.0)
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


async def test_answered_still_leaves_the_bulk_work_its_slices() -> None:
    with urgent():
        started = time.perf_counter()
        await step_back(0.05)
        took = time.perf_counter() - started
    assert 0.04 <= took < 1.0


async def test_ready_runs_the_requests_ready_steps_before_the_bulk_work_goes_on() -> None:
    """A request whose steps ready one another (handler, producer send, socket write):
    the whole chain runs before step_back returns, not one step per slice."""
    steps = 0
    answered = asyncio.Event()

    async def request() -> None:
        nonlocal steps
        with urgent():
            for _ in range(20):
                busy(0.001)
                steps += 1
                await asyncio.sleep(0)
            await answered.wait()  # then it waits for the broker: I/O

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    assert urgent_in_flight()
    await step_back_ready(5.0)
    assert steps == 20  # every ready step ran
    assert urgent_in_flight()  # and the bulk work did not wait for the answer
    answered.set()
    await task
    assert not urgent_in_flight()


async def test_ready_does_not_wait_while_the_request_waits_for_io() -> None:
    """The request waits for the broker's acknowledgement: the loop is idle, and waiting
    would only idle the bulk work too."""
    answered = asyncio.Event()

    async def request() -> None:
        with urgent():
            await answered.wait()

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await step_back_ready(5.0)
    assert time.perf_counter() - started < 0.5
    assert urgent_in_flight()
    answered.set()
    await task


async def test_ready_leaves_the_bulk_work_its_slices_when_requests_never_stop() -> None:
    stop = False

    async def requests() -> None:
        while not stop:
            with urgent():
                busy(0.001)
                await asyncio.sleep(0)

    task = asyncio.create_task(requests())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await step_back_ready(0.05)
    took = time.perf_counter() - started
    stop = True
    await task
    assert 0.04 <= took < 1.0


def test_the_setting_chooses_the_step_back_and_the_short_slices() -> None:
    """``projection_step_back``: ``ready`` slices shorter while a request is in flight
    (its I/O's completion waits for a slice); ``answered`` keeps the 4 ms slices."""
    try:
        pacing.use("ready")
        assert not pacing.short_slices()
        with urgent():
            assert pacing.short_slices()
        pacing.use("answered")
        with urgent():
            assert not pacing.short_slices()
    finally:
        pacing.use(Settings.model_fields["projection_step_back"].default)


async def test_ready_still_waits_for_answers_before_a_step_it_cannot_slice() -> None:
    """A store's write holds the loop for milliseconds in one call: with ``ready`` it
    waits for the request in flight to be answered first (at most the cap)."""
    answered = asyncio.Event()

    async def request() -> None:
        with urgent():
            await answered.wait()

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    try:
        pacing.use("ready")
        waiting = asyncio.create_task(pacing.before_long_step())
        await asyncio.sleep(0.005)
        assert not waiting.done()
        answered.set()
        await asyncio.wait_for(waiting, 1.0)
    finally:
        pacing.use(Settings.model_fields["projection_step_back"].default)
    await task

"""Work that must answer fast (webhook intake, the order receiver: the caller waits for
the answer) tells bulk work (the import projection folding a backlog) to step back while
it is in flight.

One process-wide counter: intake wraps each request in :func:`urgent`; the projection
calls :func:`step_back` between its slices of CPU work (``streams.pacing``). With no
request in flight that is a plain yield to the loop. With one in flight, two ways
(``projection_step_back``):

- ``answered`` (:func:`step_back`, the default before issue 24's session 8): wait until
  none is in flight (at most ``max_wait_s``), so each step of the request (a broker
  answer, the HTTP write) runs at once instead of behind the next slice, and the
  projection still moves when requests never stop coming. It also waits out the
  request's I/O: a webhook's answer waits ~15 ms for the broker (the app producer's 5 ms
  linger, the round trip), and at 50 webhooks/s one is nearly always in flight, so
  every step-back of the ingest bench hit its 10 ms cap: the projection idled ~10 ms
  per 4 ms slice, and the loop with it.
- ``ready`` (:func:`step_back_ready`, the default): yield until a turn of the loop
  leaves nothing else ready to run (at most ``max_wait_s``): the request's chain of
  ready steps (its handler, the producer's send, the HTTP write once the broker
  answered) runs through before the next slice, and while it waits for I/O the
  projection folds on, in shorter slices (``agents.imports.slices.URGENT_SLICE_S``),
  so the I/O's completion waits about one slice for the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Without CPython's ready queue (another loop): a turn of the loop that ran only the
# caller's own wake-up takes tens of microseconds; one that ran a step of a request
# longer. On a busy host a quiet turn may look long: the caller then waits on, up to its
# cap.
IDLE_TURN_S = 0.0002

_in_flight = 0
_quiet: list[asyncio.Future[None]] = []  # step_back callers waiting for no request in flight


@contextmanager
def urgent() -> Iterator[None]:
    global _in_flight
    _in_flight += 1
    try:
        yield
    finally:
        _in_flight -= 1
        if not _in_flight:
            waiting = list(_quiet)
            _quiet.clear()
            for future in waiting:
                _wake(future)


def urgent_in_flight() -> bool:
    return _in_flight > 0


async def step_back(max_wait_s: float) -> None:
    """Yield to the loop; while urgent work is in flight, until none is (at most
    ``max_wait_s``)."""
    if not _in_flight:
        await asyncio.sleep(0)
        return
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    _quiet.append(future)
    timer = loop.call_later(max_wait_s, _wake, future)
    try:
        await future
    finally:
        timer.cancel()
        if future in _quiet:
            _quiet.remove(future)


async def step_back_ready(max_wait_s: float) -> None:
    """Yield to the loop; while urgent work is in flight, until a turn of the loop leaves
    nothing else ready to run (the request waits for I/O, or is answered), at most
    ``max_wait_s``."""
    if not _in_flight:
        await asyncio.sleep(0)
        return
    # The loop's queue of ready callbacks (CPython's asyncio keeps it in ``_ready``): a
    # request's next step is one of them. Without it, the length of a turn.
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    clock = time.perf_counter
    deadline = clock() + max_wait_s
    quiet = 0
    while _in_flight:
        started = clock()
        await asyncio.sleep(0)
        now = clock()
        if ready is not None:
            # I/O polled in the turn that woke this caller is queued behind it: the
            # queue is not empty then, and one more turn runs it (and what it readies).
            if not ready:
                return
        else:
            quiet = quiet + 1 if now - started < IDLE_TURN_S else 0
            if quiet >= 2:
                return
        if now >= deadline:
            return


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

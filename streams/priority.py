"""Work that must answer fast (webhook intake, the order receiver: the caller waits for
the answer) tells bulk work (the import projection folding a backlog) to step back while
it is in flight.

One process-wide counter: intake wraps each request in :func:`urgent`; the projection
calls :func:`step_back` between its slices of CPU work (``streams.pacing``). With no
request in flight that is a plain yield to the loop; with one in flight it yields until
the loop has nothing else to run (at most ``max_wait_s``): every step of the request
that is ready (its handler, the producer's send, the HTTP write once the broker
answered) runs before the next slice, and the chain of steps one step readies runs
through. It does not wait while the request waits for I/O (the broker's
acknowledgement, a producer's linger): then the loop is idle and the projection's next
slice costs the request nothing until the answer arrives, and then at most a slice
(the projection slices shorter while a request is in flight, ``agents.imports.slices``).
Waiting out the request's I/O as well, as before, left the projection idle ~10 ms per
4 ms slice at 50 webhooks/s: a webhook's answer waits ~15 ms for the broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A turn of the loop that ran only the caller's own wake-up (and a poll that found no
# I/O) takes tens of microseconds; one that ran a step of a request takes longer. On a
# busy host a quiet turn may look long: the caller then waits on, up to its cap.
IDLE_TURN_S = 0.0002

_in_flight = 0


@contextmanager
def urgent() -> Iterator[None]:
    global _in_flight
    _in_flight += 1
    try:
        yield
    finally:
        _in_flight -= 1


def urgent_in_flight() -> bool:
    return _in_flight > 0


async def step_back(max_wait_s: float) -> None:
    """Yield to the loop; while urgent work is in flight, until two turns of the loop in
    a row ran nothing else (the request waits for I/O, or is answered), at most
    ``max_wait_s``."""
    if not _in_flight:
        await asyncio.sleep(0)
        return
    clock = time.perf_counter
    deadline = clock() + max_wait_s
    quiet = 0
    while _in_flight:
        started = clock()
        await asyncio.sleep(0)
        now = clock()
        # Two: I/O the loop polls in the turn that wakes this caller runs after it.
        quiet = quiet + 1 if now - started < IDLE_TURN_S else 0
        if quiet >= 2 or now >= deadline:
            return

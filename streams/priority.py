"""Work that must answer fast (webhook intake, the order receiver: the caller waits for
the answer) tells bulk work (the import projection folding a backlog) to step back while
it is in flight.

One process-wide counter: intake wraps each request in :func:`urgent`; the projection
calls :func:`step_back` between its slices of CPU work (``streams.pacing``). With no
request in flight that is a plain yield to the loop; with one in flight it waits until
none is (at most ``max_wait_s``), so each step of the request (a broker answer, the HTTP
write) runs at once instead of behind the next slice, and the projection still moves
when requests never stop coming.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

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


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

"""Work that must answer fast (webhook intake: Norce waits for the 200) tells bulk work
(the import projection folding a backlog) to step back while it is in flight.

One process-wide counter: intake wraps each request in :func:`urgent`; the projection's
pacer checks :func:`urgent_in_flight` between its slices of CPU work and, while a request
is in flight, sleeps a millisecond instead of only yielding, so the request and the
broker (on a small host) get the CPU the next slice would take.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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

"""Outside services the worker depends on (broker, schema registry, Norce), and how an
outage of one is waited out.

The rule (README, "Failure handling"): when a service does not answer or refuses us
(connection error, timeout, 5xx, 401/403, 429 past the client's retries), that is not
the record's fault. Nothing is dead-lettered for it: the work waits and retries with a
backoff, offsets stay uncommitted, nothing is lost. One warning when the outage starts
and one line when the service answers again, never a line per retry. Only the record's
own fault (an unknown schema id, a 404 of one entity, a 400 for its data) is a dead
letter.

``Dependency`` keeps that state per service and logs the two lines; ``wait_out`` runs a
call until it succeeds or fails for a reason that is not an outage. ``DEPENDENCIES`` is
what ``/ready`` and the dashboard show.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from norce.errors import is_outage

T = TypeVar("T")

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0

_log = logging.getLogger(__name__)


class Stopping(Exception):
    """The app stopped while a dependency was out: the work was not done (nor failed)."""


class Dependency:
    """Whether one outside service answers; logs when an outage starts and ends."""

    def __init__(
        self,
        name: str,
        *,
        waiting: str = "work that needs it waits and retries (nothing is dead-lettered)",
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name  # never holds credentials (callers pass URLs without them)
        self.waiting = waiting
        self.log = logger or _log
        self.down_since: float | None = None  # monotonic
        self.down_at: float | None = None  # wall clock, for views
        self.reason = ""
        self.outages = 0

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    def failed(self, reason: str) -> None:
        """A call found it out; the first failure of an outage logs one warning."""
        self.reason = reason[:500]
        if self.down_since is None:
            self.down_since, self.down_at = time.monotonic(), time.time()
            self.outages += 1
            self.log.warning("%s unavailable (%s): %s", self.name, self.reason, self.waiting)

    def answered(self) -> None:
        """A call got a useful answer: ends an outage (one line)."""
        if self.down_since is not None:
            lasted = time.monotonic() - self.down_since
            self.down_since = self.down_at = None
            self.reason = ""
            self.log.warning("%s answers again after %.0f s", self.name, lasted)

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "down": self.is_down,
            "since": self.down_at,
            "reason": self.reason,
            "outages": self.outages,
        }


# name -> dependency, for /ready and the dashboard (one per outside service).
DEPENDENCIES: dict[str, Dependency] = {}


def register(dependency: Dependency) -> Dependency:
    DEPENDENCIES[dependency.name] = dependency
    return dependency


def down() -> list[dict[str, Any]]:
    """The dependencies out now, as views."""
    return [d.view() for d in DEPENDENCIES.values() if d.is_down]


async def wait_out(
    call: Callable[[], Awaitable[T]],
    dependency: Dependency,
    *,
    is_outage: Callable[[BaseException], bool],
    stopping: Callable[[], bool],
    min_delay: float = BACKOFF_MIN_S,
    max_delay: float = BACKOFF_MAX_S,
) -> T:
    """``call()`` until it answers; an outage error is waited out (``min_delay`` doubling
    to ``max_delay``), any other error propagates (the caller dead-letters the record).
    Raises ``Stopping`` when ``stopping()`` turns true during an outage."""
    delay = min_delay
    while True:
        try:
            result = await call()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not is_outage(error):
                dependency.answered()  # it answered: the record is at fault, not the service
                raise
            dependency.failed(f"{type(error).__name__}: {error}")
            if not await pause(delay, stopping):
                raise Stopping(f"stopping while {dependency.name} is unavailable") from error
            delay = min(delay * 2, max_delay)
            continue
        dependency.answered()
        return result


async def pause(seconds: float, stopping: Callable[[], bool], step: float = 0.5) -> bool:
    """Sleep ``seconds`` in short steps; False as soon as ``stopping()`` is true (a long
    backoff must not hold up a shutdown)."""
    deadline = time.monotonic() + seconds
    while not stopping():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        await asyncio.sleep(min(step, left))
    return False


# Norce Query and Connect: one dependency (one tenant, one identity server).
NORCE = register(
    Dependency(
        "Norce",
        waiting="export lookups and job tracking wait and retry (nothing is dead-lettered "
        "for it); deltas stay pending",
    )
)


async def wait_for_norce(
    call: Callable[[], Awaitable[T]], *, stopping: Callable[[], bool], max_delay: float
) -> T:
    """``wait_out`` for a Norce call: 401/403, 5xx, timeouts and 429 past the client's
    retries are an outage (``norce.errors.is_outage``); a 404 or 400 is the record's."""
    return await wait_out(call, NORCE, is_outage=is_outage, stopping=stopping, max_delay=max_delay)

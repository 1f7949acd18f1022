"""Named points on the import path where a test injects a fault (a SIGKILL between two
steps that must survive one). The worker registers nothing, so reaching a point is one
dict lookup; the kill tests run the worker through ``tests/support/faulty_worker.py``,
which registers the faults their environment asks for. No production code imports it.

Points: ``checkpoint.after_produce`` (a projection checkpoint's changelog and dead
letters acknowledged, its store not yet written), ``checkpoint.after_store`` (the store
written, the input offsets not yet committed), ``import.after_post`` (a delta's or full
import's POST answered, its JobId not yet recorded)."""

from __future__ import annotations

from collections.abc import Callable

POINTS = frozenset({"checkpoint.after_produce", "checkpoint.after_store", "import.after_post"})
_faults: dict[str, Callable[[], None]] = {}


def reached(point: str) -> None:
    fault = _faults.get(point)
    if fault is not None:
        fault()


def inject(point: str, fault: Callable[[], None]) -> None:
    """Run ``fault`` each time ``point`` is reached (tests only)."""
    if point not in POINTS:
        raise ValueError(f"no fault point {point!r}; one of {sorted(POINTS)}")
    _faults[point] = fault

"""What makes a worker ready, as every flow reports it: services outside Faust's own
machinery (the import projection, the export reader) register their readiness and the
partitions they own but cannot process here; ``/ready`` (``streams.health``) and the
timers that must not run mid-rebalance read it. Here, below the flows, so a flow reports
its state without importing the ops views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import faust

READY_CHECKS: list[Callable[[], bool]] = []
# Owned partitions a service does not process ("topic[p]"): /ready names them.
UNPROCESSED: list[Callable[[], list[str]]] = []


class Reachability(Protocol):
    reachable: bool


def is_ready(app: faust.App, probe: Reachability | None = None) -> bool:
    """Partitions assigned, tables recovered, every service loaded and the broker
    reachable: the worker serves current state."""
    recovery = app.tables.recovery
    reachable = probe is None or probe.reachable
    if not (reachable and recovery.completed.is_set() and not app.rebalancing):
        return False
    return all(check() for check in READY_CHECKS)

"""What makes a worker ready, as every flow reports it: services outside Faust's own
machinery (the import projection, the export reader) register their readiness and the
partitions they own but cannot process on the app's :class:`Readiness`; ``/ready``
(``streams.health``) and the timers that must not run mid-rebalance read it. Here, below
the flows, so a flow reports its state without importing the ops views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import faust


class Reachability(Protocol):
    reachable: bool


class Readiness:
    """One app's registered checks (each app has its own: ``ServiceApp.readiness``)."""

    def __init__(self) -> None:
        self._checks: list[Callable[[], bool]] = []
        # Owned partitions a service does not process ("topic[p]"): /ready names them.
        self._unprocessed: list[Callable[[], list[str]]] = []

    def add(
        self,
        ready: Callable[[], bool] | None = None,
        *,
        unprocessed: Callable[[], list[str]] | None = None,
    ) -> None:
        if ready is not None:
            self._checks.append(ready)
        if unprocessed is not None:
            self._unprocessed.append(unprocessed)

    def services_ready(self) -> bool:
        return all(check() for check in self._checks)

    def unprocessed(self) -> list[str]:
        return [p for names in self._unprocessed for p in names()]


def is_ready(app: faust.App, probe: Reachability | None = None) -> bool:
    """Partitions assigned, tables recovered, every service loaded and the broker
    reachable: the worker serves current state."""
    recovery = app.tables.recovery
    reachable = probe is None or probe.reachable
    if not (reachable and recovery.completed.is_set() and not app.rebalancing):
        return False
    return app.readiness.services_ready()  # type: ignore[no-any-return]

"""Counters counted in a child process, shown on the parent's ``/metrics``.

A child (a webhook intake process) counts in its own :data:`streams.metrics.REGISTRY`, as
the worker would; every second it sends :func:`totals`, one JSON line on its stdout. The
parent keeps one :class:`CounterRelay` per child process and adds what grew since that
child's last line to its own counters of the same name. Totals, not deltas: a lost or
repeated line costs nothing, and a restarted child starts a relay of its own at zero.
"""

from __future__ import annotations

from typing import Any

from streams.metrics import Counter, Registry

# counter name -> [[label value, ..., total], ...] (JSON: no tuples as keys)
Totals = dict[str, list[list[Any]]]


def totals(registry: Registry) -> Totals:
    """Every counter of ``registry`` with a count, by name and label values."""
    out: Totals = {}
    for metric in registry.metrics:
        if not isinstance(metric, Counter):
            continue
        rows = [[*labels, value] for labels, value in metric.totals().items() if value]
        if rows:
            out[metric.name] = rows
    return out


class CounterRelay:
    """One child's totals -> increments of the parent registry's counters."""

    def __init__(self, registry: Registry) -> None:
        self._counters = {m.name: m for m in registry.metrics if isinstance(m, Counter)}
        self._seen: dict[tuple[str, tuple[str, ...]], float] = {}

    def apply(self, child_totals: Totals) -> None:
        for name, rows in child_totals.items():
            counter = self._counters.get(name)
            if counter is None:  # a counter the parent does not have: not shown
                continue
            for *labels, total in rows:
                key = (name, tuple(str(v) for v in labels))
                if len(key[1]) != len(counter.labelnames):
                    continue
                grown = float(total) - self._seen.get(key, 0.0)
                if grown > 0:
                    counter.inc(grown, **dict(zip(counter.labelnames, key[1], strict=True)))
                    self._seen[key] = float(total)

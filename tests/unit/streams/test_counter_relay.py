"""Counters counted in an intake process reach the worker's registry: what grew since the
child's last report is added once, whatever the label order or how often a total is
repeated; a restarted child (a relay of its own) counts from zero again."""

from __future__ import annotations

import orjson

from streams.counter_relay import CounterRelay, totals
from streams.metrics import Registry


def registries() -> tuple[Registry, Registry]:
    child, parent = Registry(), Registry()
    for registry in (child, parent):
        registry.counter("hooks_total", "Webhooks.", ["event_type", "code"])
        registry.counter("plain_total", "No labels.")
    return child, parent


def counter(registry: Registry, name: str):  # type: ignore[no-untyped-def]
    return next(m for m in registry.metrics if m.name == name)


def test_growth_is_added_once_however_often_a_total_is_reported() -> None:
    child, parent = registries()
    relay = CounterRelay(parent)
    hooks = counter(child, "hooks_total")
    hooks.inc(3, event_type="A", code="200")
    hooks.inc(1, event_type="A", code="401")
    counter(child, "plain_total").inc(2)
    # through JSON, as the intake process writes it
    report = orjson.loads(orjson.dumps(totals(child)))
    relay.apply(report)
    relay.apply(report)  # the same totals again: nothing new
    hooks.inc(2, event_type="A", code="200")
    relay.apply(totals(child))
    seen = counter(parent, "hooks_total")
    assert seen.get(event_type="A", code="200") == 5
    assert seen.get(event_type="A", code="401") == 1
    assert counter(parent, "plain_total").get() == 2


def test_a_restarted_child_counts_from_zero_on_top_of_what_was_relayed() -> None:
    first, parent = registries()
    counter(first, "hooks_total").inc(7, event_type="A", code="200")
    CounterRelay(parent).apply(totals(first))
    second, _ = registries()  # the new process' registry starts at zero
    counter(second, "hooks_total").inc(2, event_type="A", code="200")
    CounterRelay(parent).apply(totals(second))
    assert counter(parent, "hooks_total").get(event_type="A", code="200") == 9


def test_counters_the_parent_lacks_or_with_other_labels_are_ignored() -> None:
    _, parent = registries()
    relay = CounterRelay(parent)
    relay.apply({"unknown_total": [["x", 1]], "hooks_total": [["only-one-label", 4]]})
    assert totals(parent) == {}

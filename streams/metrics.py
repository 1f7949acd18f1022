"""Process-local Prometheus metrics, kept in their own ``CollectorRegistry``.

A thin typed adapter over ``prometheus_client``: the call sites keep one call shape
(``counter.inc(n, **labels)``, ``histogram.observe(v, **labels)``, ``gauge.get(**labels)``)
whatever the metric's labels, and ``/metrics`` renders ``REGISTRY.collector`` with
``prometheus_client.generate_latest``. Label values are taken by name, in ``labelnames``
order; a missing one is a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

import prometheus_client
from prometheus_client import CollectorRegistry

LabelValues = tuple[str, ...]

# Counters would also expose a "<name>_created" series each: noise for this service, whose
# dashboards rate() the totals. A process-wide switch; this module owns the process' metrics.
prometheus_client.disable_created_metrics()

DEFAULT_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class _Metric:
    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Iterable[str] = (),
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._registry = registry if registry is not None else REGISTRY.collector

    def _key(self, labels: Mapping[str, object]) -> LabelValues:
        return tuple(str(labels[n]) for n in self.labelnames)

    def _sample(self, sample_name: str, labels: Mapping[str, object]) -> float:
        key = dict(zip(self.labelnames, self._key(labels), strict=True))
        return self._registry.get_sample_value(sample_name, key) or 0.0


class Counter(_Metric):
    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Iterable[str] = (),
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(name, help, labelnames, registry=registry)
        self._counter = prometheus_client.Counter(
            name, help, self.labelnames, registry=self._registry
        )
        # label values -> child: prometheus_client's labels() validates and locks on every
        # call, which showed in the export path's profile (a call per webhook and entity)
        self._children: dict[LabelValues, prometheus_client.Counter] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if not self.labelnames:
            self._counter.inc(amount)
            return
        key = self._key(labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._counter.labels(*key)
        child.inc(amount)

    def totals(self) -> dict[LabelValues, float]:
        """Label values -> count, for every label set counted in this process."""
        return {
            tuple(sample.labels[n] for n in self.labelnames): sample.value
            for family in self._counter.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        }

    def get(self, **labels: str) -> float:
        # prometheus_client names a counter's sample "<name>_total" whether or not the name
        # given ended so.
        return self._sample(self.name.removesuffix("_total") + "_total", labels)


class Gauge(_Metric):
    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Iterable[str] = (),
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(name, help, labelnames, registry=registry)
        self._gauge = prometheus_client.Gauge(name, help, self.labelnames, registry=self._registry)

    def _child(self, labels: Mapping[str, object]) -> prometheus_client.Gauge:
        return self._gauge.labels(*self._key(labels)) if self.labelnames else self._gauge

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).inc(amount)

    def set(self, value: float, **labels: str) -> None:
        self._child(labels).set(value)

    def get(self, **labels: str) -> float:
        return self._sample(self.name, labels)

    def replace(self, values: Mapping[LabelValues, float]) -> None:
        """Set every series at once (label values in ``labelnames`` order); series not
        given disappear. For gauges computed at scrape time (on the event loop, so no
        scrape sees the cleared state)."""
        self._gauge.clear()
        for key, value in values.items():
            self._gauge.labels(*(str(v) for v in key)).set(value)


class Histogram(_Metric):
    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Iterable[str] = (),
        buckets: Iterable[float] = (),
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(name, help, labelnames, registry=registry)
        self.buckets = tuple(sorted(buckets)) or DEFAULT_BUCKETS
        self._histogram = prometheus_client.Histogram(
            name, help, self.labelnames, registry=self._registry, buckets=self.buckets
        )
        self._children: dict[LabelValues, prometheus_client.Histogram] = {}  # as Counter

    def observe(self, value: float, **labels: str) -> None:
        if not self.labelnames:
            self._histogram.observe(value)
            return
        key = self._key(labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._histogram.labels(*key)
        child.observe(value)


_M = TypeVar("_M", bound=_Metric)


class Registry:
    """Makes metrics in one ``CollectorRegistry`` (``collector``), not the library's global
    default, so only this service's metrics are exposed and tests can make their own."""

    def __init__(self) -> None:
        self.collector = CollectorRegistry(auto_describe=True)
        self.metrics: list[_Metric] = []

    def _add(self, metric: _M) -> _M:
        self.metrics.append(metric)
        return metric

    def counter(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Counter:
        return self._add(Counter(name, help, labelnames, registry=self.collector))

    def gauge(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Gauge:
        return self._add(Gauge(name, help, labelnames, registry=self.collector))

    def histogram(
        self, name: str, help: str, labelnames: Iterable[str] = (), buckets: Iterable[float] = ()
    ) -> Histogram:
        return self._add(Histogram(name, help, labelnames, buckets, registry=self.collector))

    def render(self) -> str:
        """The text exposition format (what ``/metrics`` serves)."""
        return prometheus_client.generate_latest(self.collector).decode()


REGISTRY = Registry()

# Import path
events_in = REGISTRY.counter(
    "norce_sync_change_events_total", "Change events read from input topics.", ["source", "kind"]
)
stale_dropped = REGISTRY.counter(
    "norce_sync_stale_changes_dropped_total",
    "Changes not newer than the held version (out of order or duplicate).",
    ["source", "kind"],
)
dead_letters = REGISTRY.counter(
    "norce_sync_dead_letters_total", "Messages sent to the dead-letter topic.", ["stage"]
)
non_row_messages = REGISTRY.counter(
    "norce_sync_non_row_messages_total",
    "Valid Debezium messages that are not row changes (heartbeat, transaction, "
    "schema_change, message, truncate): skipped, not dead-lettered.",
    ["source", "kind", "type"],
)
state_changelog_empty = REGISTRY.counter(
    "norce_sync_state_changelog_empty_total",
    "Partitions opened with committed input offsets but an empty state changelog (the "
    "state topic deleted or emptied?).",
    ["topic", "partition"],
)
full_imports_refused = REGISTRY.counter(
    "norce_sync_full_imports_refused_total",
    "Full imports not sent: the file would deactivate more than the allowed share of "
    "what the last successful full import sent (run with --force if intended).",
    ["source", "kind"],
)
truncates = REGISTRY.counter(
    "norce_sync_truncates_total",
    "Truncate events (op t) seen on an input: never turned into deletes.",
    ["source", "kind"],
)
unwritable_prices = REGISTRY.counter(
    "norce_sync_unwritable_price_values_total",
    "Owned price fields sent as null or 0, which Norce ignores (it keeps its current value).",
    ["source", "kind", "field"],
)
applied_changes = REGISTRY.counter(
    "norce_sync_changes_applied_total",
    "Changes folded into the state table by this worker and stored (stale ones included).",
    ["source", "kind"],
)
jobs_submitted = REGISTRY.counter(
    "norce_sync_jobs_submitted_total", "Import jobs posted to Connect.", ["source", "kind", "mode"]
)
jobs_finished = REGISTRY.counter(
    "norce_sync_jobs_finished_total", "Import jobs that ended, by status.", ["kind", "status"]
)
job_lead_time = REGISTRY.histogram(
    "norce_sync_job_lead_time_seconds", "Submission to end of an import job.", ["kind", "mode"]
)
norce_calls = REGISTRY.counter(
    "norce_sync_norce_calls_total", "Calls to Norce by API and outcome.", ["api", "outcome"]
)
# Export path
events_out = REGISTRY.counter(
    "norce_sync_target_records_total", "Records produced to target topics.", ["target", "kind"]
)
webhooks_in = REGISTRY.counter(
    "norce_sync_webhooks_total", "Webhook calls by event type and answer.", ["event_type", "code"]
)
intake_processes = REGISTRY.gauge(
    "norce_sync_intake_processes",
    "Webhook intake processes serving intake_port (beside the worker).",
)
# Ops: computed when /metrics is scraped, for the whole group (every worker answers the
# same; aggregate with max(), not sum()).
jobs_by_status = REGISTRY.gauge(
    "norce_sync_jobs", "Jobs in the jobs table by status.", ["source", "kind", "status"]
)
pending_keys = REGISTRY.gauge(
    "norce_sync_pending_keys", "Keys waiting for their next delta.", ["source", "kind"]
)
pending_oldest_age = REGISTRY.gauge(
    "norce_sync_pending_oldest_age_seconds",
    "Age of the oldest pending key.",
    ["source", "kind"],
)
waiting_references = REGISTRY.gauge(
    "norce_sync_waiting_references",
    "Rows held back because a SKU or price list they name is not in Norce.",
    ["source", "kind"],
)
dlq_records = REGISTRY.gauge(
    "norce_sync_dlq_records", "Records in the dead-letter topic by stage.", ["stage"]
)

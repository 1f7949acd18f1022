"""Process-local Prometheus metrics: counters, gauges and histograms with labels, and
the text exposition format for ``/metrics``. Small on purpose (no client library): the
worker is the only process that exposes them."""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Iterable[str], values: LabelValues, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Iterable[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Iterable[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self.values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def get(self, **labels: str) -> float:
        return self.values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        lines = self.header()
        for key, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_labels(self.labelnames, key)} {value:g}")
        return lines


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self.values[self._key(labels)] = value

    def replace(self, values: dict[LabelValues, float]) -> None:
        """Set every series at once (label values in ``labelnames`` order); series not
        given disappear. For gauges computed at scrape time."""
        with self._lock:
            self.values = dict(values)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self, name: str, help: str, labelnames: Iterable[str] = (), buckets: Iterable[float] = ()
    ) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = sorted(buckets) or [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
        self.counts: dict[LabelValues, list[int]] = {}
        self.sums: dict[LabelValues, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts = self.counts.setdefault(key, [0] * (len(self.buckets) + 1))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            self.sums[key] = self.sums.get(key, 0.0) + value

    def render(self) -> list[str]:
        lines = self.header()
        for key, counts in sorted(self.counts.items()):
            cumulative = 0
            for bound, count in zip([*self.buckets, math.inf], counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == math.inf else f"{bound:g}"
                labels = _labels(self.labelnames, key, f'le="{le}"')
                lines.append(f"{self.name}_bucket{labels} {cumulative}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {self.sums[key]:g}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {cumulative}")
        return lines


class Registry:
    def __init__(self) -> None:
        self.metrics: list[_Metric] = []

    def _add(self, metric: _Metric) -> _Metric:
        self.metrics.append(metric)
        return metric

    def counter(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Counter:
        return self._add(Counter(name, help, labelnames))  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Gauge:
        return self._add(Gauge(name, help, labelnames))  # type: ignore[return-value]

    def histogram(
        self, name: str, help: str, labelnames: Iterable[str] = (), buckets: Iterable[float] = ()
    ) -> Histogram:
        return self._add(Histogram(name, help, labelnames, buckets))  # type: ignore[return-value]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.metrics:
            lines.extend(metric.render())  # type: ignore[attr-defined]
        return "\n".join(lines) + "\n"


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
applied_changes = REGISTRY.counter(
    "norce_sync_changes_applied_total",
    "Changes folded into the state table by this worker (stale ones included).",
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
dlq_records = REGISTRY.gauge(
    "norce_sync_dlq_records", "Records in the dead-letter topic by stage.", ["stage"]
)

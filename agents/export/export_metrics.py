"""The export flow's metrics (beside the shared ones in :mod:`streams.metrics`)."""

from __future__ import annotations

from streams import metrics

lookups_total = metrics.REGISTRY.counter(
    "norce_sync_export_lookups_total",
    "Query group lookups made by enrichment (one request each, plus nextLink pages).",
    ["kind"],
)
query_errors_total = metrics.REGISTRY.counter(
    "norce_sync_export_query_errors_total",
    "Query group lookups that failed after retries (their events were dead-lettered).",
    ["kind"],
)
waiting_events = metrics.REGISTRY.gauge(
    "norce_sync_export_waiting_events",
    "Events this worker holds in coalescing windows (not yet looked up).",
)
in_flush_events = metrics.REGISTRY.gauge(
    "norce_sync_export_in_flush_events",
    "Events this worker is looking up and producing now.",
)
consumer_lag = metrics.REGISTRY.gauge(
    "norce_sync_consumer_lag_records",
    "Records not yet committed by a consumer group, per topic (whole group: every worker "
    "answers the same; aggregate with max()).",
    ["group", "topic"],
)
latency_seconds = metrics.REGISTRY.histogram(
    "norce_sync_export_latency_seconds",
    "From webhook intake (received-at) to the target records acknowledged by the broker.",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300),
)
coalesced_total = metrics.REGISTRY.counter(
    "norce_sync_export_events_total", "Events enriched (after coalescing).", ["kind"]
)
skipped_total = metrics.REGISTRY.counter(
    "norce_sync_export_unchanged_total",
    "Target records not produced because they equal the last one.",
    ["target", "kind"],
)

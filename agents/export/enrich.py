"""Enrichment: Norce events -> one Query lookup per entity and window -> target topics.

The reader (``agents.export.reader``, a service with its own consumer group) reads the
events topic (keyed ``<kind>:<id>``) and hands each event to a per-key coalescer: the
first event of an entity opens a window of ``export_window_s``; when it closes, the
entity is read once from Query (together with the other entities due), mapped for every
target that wants its kind and produced to the target topics. Only after the broker
acknowledged every produced record (or the dead letter) are the window's events
acknowledged, so the committed offset never passes an event whose output is not stored
(at-least-once; a crash repeats lookups, never loses them).

Records identical to the last one produced for the same target and key are skipped
(``export_dedupe``; digests kept by the reader per owned partition and in the
``<app>-export-digests-changelog`` topic, partitioned like the events topic): a
redelivered webhook or a change that a target does not map produces nothing.

Norce unavailable (401/403 wrong credentials, 5xx, timeouts, 429 past the client's
retries) is an outage, not the events' fault: the lookup waits and retries with a backoff
(``streams.outage``), the events stay unacknowledged, one warning and one "answers again"
line. A lookup Norce refuses for the entity itself (400), or a target mapping that fails,
goes to the dead-letter topic (stage ``enrich``) with the newest event of the window;
replaying it re-reads the entity. An entity missing from a group answer is confirmed by a
single lookup before its tombstone is produced.
"""

from __future__ import annotations

import asyncio
import logging
import time

from faust.web import Request, Response, View

from agents.config.runtime import sync_config
from agents.export.enricher import Enricher
from agents.export.export_metrics import (
    consumer_lag,
    in_flush_events,
    waiting_events,
)
from agents.export.monitor import LagReader, Sample
from agents.export.reader import EventsReader
from agents.export.targets import (
    SUPPORTED_KINDS,
    TargetSpec,
    target_specs,
)
from streams.kafka import (
    TopicSpec,
    declare_and_confirm,
)
from streams.main import app, settings
from streams.own_topics import specs_of
from streams.topics import norce_events_topic

log = logging.getLogger(__name__)
# httpx logs every request at INFO: one line per Query lookup is noise at 200 events/s.
logging.getLogger("httpx").setLevel(logging.WARNING)

SPECS: dict[str, list[TargetSpec]] = target_specs(
    sync_config(settings), settings.export_topic_prefix
)
for _kind in SPECS:
    if _kind not in SUPPORTED_KINDS:
        log.error("export targets of kind %r are not fed (supported: %s)", _kind, SUPPORTED_KINDS)

norce_events = app.topic(
    norce_events_topic(settings),
    internal=True,  # created by the worker with the partitions below
    partitions=settings.topic_partitions,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)
# Last produced digest per target topic, by entity key (bytes, as on the events topic):
# compacted, partitioned like the events topic. The name is the one Faust gave the
# "export-digests" table's changelog before the reader kept them, so digests carry over.
DIGESTS_TOPIC = TopicSpec(
    f"{settings.app_id}-export-digests-changelog",
    settings.topic_partitions,
    compacted=True,
    replicas=settings.topic_replication_factor,
)

# One current record per key is the target topics' contract: compacted. Created and
# confirmed at start with the worker's other topics.
TARGET_TOPICS = [
    TopicSpec(
        spec.topic,
        settings.topic_partitions,
        compacted=True,
        replicas=settings.topic_replication_factor,
    )
    for specs in SPECS.values()
    for spec in specs
]
app.register_topics(norce_events, DIGESTS_TOPIC, *TARGET_TOPICS)

_topics_ready = False
_topics_lock = asyncio.Lock()


async def ensure_export_topics() -> None:
    """The events topic and the target topics exist (the worker made them ready at start;
    this covers an app that did not, and is free once done)."""
    global _topics_ready
    if _topics_ready:
        return
    async with _topics_lock:
        if _topics_ready:
            return
        specs = [*specs_of(norce_events, app), DIGESTS_TOPIC, *TARGET_TOPICS]
        if not {s.name for s in specs} <= app.own_topic_names:
            await declare_and_confirm(settings, specs, should_stop=lambda: app.should_stop)
        _topics_ready = True


enricher = Enricher(settings, app, SPECS, DIGESTS_TOPIC.name)


reader = EventsReader(
    settings,
    norce_events_topic(settings),
    DIGESTS_TOPIC.name,
    enricher.coalescer.add,
    enricher.coalescer.drain,
)
reader.fatal = app.crash
enricher.reader = reader
app.readiness.add(unprocessed=lambda: sorted(reader.unprocessed))


@app.task
async def start_reader() -> None:
    # Started and stopped with the app, as the projector is (its topics are ready then).
    await ensure_export_topics()
    await app.add_runtime_dependency(reader)


lag_reader = LagReader(settings)


async def sample_export() -> Sample:
    """One backlog and lag sample (also sets the gauges)."""
    c = enricher.coalescer
    waiting_events.set(c.pending - c.in_flush)
    in_flush_events.set(c.in_flush)
    events_lag = input_lag = None
    groups = {
        reader.group_id: [norce_events_topic(settings)],
        # The import projection's group reads the config's input topics.
        f"{settings.app_id}-projection": sorted(sync_config(settings).topics),
    }
    try:
        for group, topics in groups.items():
            lag = await lag_reader.lag(group, topics)
            for topic, n in lag.items():
                consumer_lag.set(n, group=group, topic=topic)
            total = sum(lag.values()) if lag else None
            if group == reader.group_id:
                events_lag = total
            else:
                input_lag = total
    except Exception as exc:  # the broker may be away: the sample says "unknown"
        log.warning("consumer lag not read: %s", exc)
        await lag_reader.close()
    sample = Sample(time.time(), c.pending - c.in_flush, c.in_flush, events_lag, input_lag,
                    enricher.records_out)  # fmt: skip
    enricher.history.add(sample)
    return sample


@app.timer(settings.export_monitor_interval_s)
async def monitor_export() -> None:
    await sample_export()


@app.page("/export/stats")
class ExportStats(View):
    # Guarded by the ops token like every view (agents.ops.views.ops_auth, deny by default).
    async def get(self, request: Request) -> Response:
        return self.json(
            {**enricher.stats(), "history": enricher.history.view(), "time": time.time()}
        )

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

The wiring: :func:`install` builds the flow's services (topics, enricher, reader, intake,
monitor sampler) with what they need passed in and declares them on the worker's app;
the composition root (``norce_sync.worker``) calls it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agents.config.sync_config import SyncConfig
from agents.export.enricher import Enricher
from agents.export.intake import Intake, register_intake_pages
from agents.export.monitor import Sample
from agents.export.reader import EventsReader
from agents.export.sampling import ExportSampler
from agents.export.stats_view import register_stats_view
from agents.export.targets import TargetSpec
from agents.export.topics import ExportTopics, TopicsReady
from streams.app import ServiceApp
from streams.direct_send import DirectSend
from streams.event_routes import EventRoutes
from streams.kafka import TopicSpec
from streams.settings import Settings


@dataclass(frozen=True)
class ExportFlow:
    """The export flow's public services and values (what the ops views read)."""

    topics: ExportTopics
    enricher: Enricher
    reader: EventsReader
    intake: Intake
    sampler: ExportSampler
    topics_ready: TopicsReady

    @property
    def specs(self) -> dict[str, list[TargetSpec]]:
        """Per entity kind, the targets that want it."""
        return self.topics.specs

    @property
    def digests_topic(self) -> TopicSpec:
        return self.topics.digests

    async def sample(self) -> Sample:
        """One backlog and lag sample (also sets the gauges)."""
        return await self.sampler.sample()

    async def ensure_topics(self) -> None:
        """The events, digests and target topics exist (free once they do)."""
        await self.topics_ready.ensure()


def install(
    app: ServiceApp, settings: Settings, config: SyncConfig, routes: EventRoutes
) -> ExportFlow:
    # httpx logs every request at INFO: one line per Query lookup is noise at 200 events/s.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    topics = ExportTopics.of(settings, config)
    app.register_topics(*topics.all)  # created and confirmed at start with the others
    ready = TopicsReady(
        settings, topics, lambda: app.own_topic_names, lambda: bool(app.should_stop)
    )

    enricher = Enricher(settings, app, topics.specs, topics.digests.name)
    reader = EventsReader(
        settings,
        topics.events.name,
        topics.digests.name,
        enricher.coalescer.add,
        enricher.coalescer.drain,
    )
    reader.stop_worker.crash = app.crash
    enricher.reader = reader
    app.readiness.add(unprocessed=lambda: sorted(reader.unprocessed))

    async def start_reader() -> None:
        # Started and stopped with the app, as the projector is (its topics are ready then).
        await ready.ensure()
        await app.add_runtime_dependency(reader)

    app.task(start_reader)

    sampler = ExportSampler(
        settings,
        enricher,
        events_group=reader.group_id,
        events_topic=topics.events.name,
        input_topics=config.topics,
    )
    app.timer(settings.export_monitor_interval_s)(sampler.tick)
    register_stats_view(app, enricher)

    intake = Intake(settings, DirectSend(app), ready.ensure, routes)
    register_intake_pages(app, intake)
    return ExportFlow(topics, enricher, reader, intake, sampler, ready)

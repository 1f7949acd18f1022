"""Enrichment: Norce events -> one Query lookup per entity and window -> target topics.

The agent reads the events topic (keyed ``<kind>:<id>``) without acknowledging, and
hands each event to a per-key ``Coalescer``: the first event of an entity opens a window
of ``export_window_s``; when it closes, the entity is read once from Query, mapped for
every target that wants its kind and produced to the target topics. Only after the
broker acknowledged every produced record (or the dead letter) are the window's events
acknowledged, so the committed offset never passes an event whose output is not stored
(at-least-once; a crash repeats lookups, never loses them).

Records identical to the last one produced for the same target and key are skipped
(``export_dedupe``; digests in the ``export-digests`` table, partitioned like the events
topic): a redelivered webhook or a change that a target does not map produces nothing.

A lookup that still fails after the client's retries (429/5xx with ``Retry-After``), or
a target mapping that fails, goes to the dead-letter topic (stage ``enrich``) with the
newest event of the window; replaying it re-reads the entity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import EventT
from faust.web import Request, Response, View
from pydantic import ValidationError

from agents.config.runtime import norce_endpoints, sync_config
from agents.export.coalesce import Coalescer
from agents.export.events import NorceEvent, split_entity_key
from agents.export.targets import (
    SUPPORTED_KINDS,
    EntityLookup,
    OutRecord,
    TargetSpec,
    build_records,
    target_specs,
)
from norce.client import NorceClient
from norce.config import NorceCredentials
from norce.errors import NorceError
from norce.retry import RetryPolicy
from streams import metrics
from streams.kafka import TopicSpec, declare_and_confirm, send_dead_letter, send_until_acked
from streams.main import app, settings
from streams.own_topics import specs_of
from streams.records import DeadLetter, Stage
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
# Last produced digest per target topic, by entity key (bytes, as on the events topic, so
# a key read back from the changelog equals the one written).
digests = app.Table("export-digests", partitions=settings.topic_partitions, key_type=bytes)

lookups_total = metrics.REGISTRY.counter(
    "norce_sync_export_lookups_total", "Query lookups made by enrichment.", ["kind"]
)
coalesced_total = metrics.REGISTRY.counter(
    "norce_sync_export_events_total", "Events enriched (after coalescing).", ["kind"]
)
skipped_total = metrics.REGISTRY.counter(
    "norce_sync_export_unchanged_total",
    "Target records not produced because they equal the last one.",
    ["target", "kind"],
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
app.register_topics(*TARGET_TOPICS)

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
        specs = [*specs_of(norce_events, app), *TARGET_TOPICS]
        if not {s.name for s in specs} <= app.own_topic_names:
            await declare_and_confirm(settings, specs, should_stop=lambda: app.should_stop)
        _topics_ready = True


class Enricher:
    """The flush side of the coalescer: lookup, map, dedupe, produce, then acknowledge."""

    def __init__(self, specs: dict[str, list[TargetSpec]]) -> None:
        self.specs = specs
        self._client: NorceClient | None = None
        self._lookup: EntityLookup | None = None
        self.coalescer: Coalescer[str, EventT] = Coalescer(
            settings.export_window_s, self.flush, max_pending=settings.export_max_pending
        )
        self.records_out = 0
        self.unchanged = 0
        self.dead_letters = 0

    @property
    def lookup(self) -> EntityLookup:
        if self._lookup is None:
            self._client = NorceClient(
                NorceCredentials(
                    client_id=settings.norce_client_id,
                    client_secret=settings.norce_client_secret,
                    application_id=settings.norce_application_id,
                    scope=settings.norce_environment,
                ),
                norce_endpoints(settings),
                retry=RetryPolicy(
                    max_attempts=settings.export_query_max_attempts,
                    base_delay=settings.export_query_base_delay_s,
                    max_delay=settings.export_query_max_delay_s,
                ),
            )
            self._lookup = EntityLookup(
                self._client.query,
                concurrency=settings.export_query_concurrency,
                reference_ttl=settings.export_reference_ttl_s,
            )
        return self._lookup

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def stats(self) -> dict[str, Any]:
        c = self.coalescer
        return {
            "events_in": c.items_in,
            "flushes": c.flushes,
            "pending": c.pending,
            "lookups": self._lookup.lookups if self._lookup else 0,
            "records_out": self.records_out,
            "unchanged": self.unchanged,
            "dead_letters": self.dead_letters,
            "flush_errors": c.errors,
        }

    async def flush(self, key: str, events: list[EventT]) -> None:
        await self._enrich(key, events)
        for event in events:  # only now may the committed offset pass them
            event.ack()

    async def _enrich(self, key: str, events: list[EventT]) -> None:
        decoded: list[NorceEvent] = []
        for event in events:
            try:
                decoded.append(NorceEvent.model_validate_json(event.value))
            except ValidationError as exc:
                await self._dead_letter(event, Stage.DECODE, f"not a Norce event: {exc}")
        if not decoded:
            return
        kind, entity_id = split_entity_key(key)
        specs = self.specs.get(kind, [])
        if not specs:
            return  # no target wants this kind: nothing to look up
        coalesced_total.inc(len(decoded), kind=kind)
        try:
            lookups_total.inc(kind=kind)
            document = await self.lookup.fetch(kind, entity_id)
        except (NorceError, ValueError) as exc:
            await self._dead_letter(events[-1], Stage.ENRICH, f"Query lookup failed: {exc}")
            return
        built = build_records(
            kind,
            entity_id,
            document,
            specs,
            event_types=[e.event_type for e in decoded],
            received_at=min(e.received_at for e in decoded),
            count=len(decoded),
        )
        for spec, error in built.errors:
            await self._dead_letter(
                events[-1], Stage.ENRICH, f"target {spec.target}: {error.reason}"
            )
        await self._produce(key, built.records)

    async def _produce(self, key: str, records: Sequence[OutRecord]) -> None:
        held: dict[str, str] = {}
        if settings.export_dedupe:
            held = dict(digests.get(key.encode()) or {})
        todo = [r for r in records if held.get(r.topic) != r.digest]
        for r in records:
            if r not in todo:
                self.unchanged += 1
                skipped_total.inc(target=r.target, kind=r.kind)
        if not todo:
            return
        # The events stay unacknowledged meanwhile, so giving up would only delay them to
        # the next restart: keep trying (the broker is the only way forward) until we stop.
        await asyncio.gather(
            *(send_until_acked(app, r.topic, r.key, r.value, r.headers) for r in todo)
        )
        for r in todo:
            metrics.events_out.inc(target=r.target, kind=r.kind)
        self.records_out += len(todo)
        if settings.export_dedupe:
            held.update({r.topic: r.digest for r in todo})
            digests[key.encode()] = held

    async def _dead_letter(self, event: EventT, stage: str, reason: str) -> None:
        message = event.message
        letter = DeadLetter(
            key=message.key,
            value=message.value,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            stage=str(stage),
            reason=reason[:2000],
        )
        await send_dead_letter(app, letter, until_acked=True)
        self.dead_letters += 1


enricher = Enricher(SPECS)


@app.agent(norce_events, name="export-enrich")
async def enrich(stream: faust.StreamT[bytes]) -> None:
    await ensure_export_topics()
    manual = stream.noack()  # acknowledged by Enricher.flush after the produce
    try:
        async for event in manual.events():
            key = event.key.decode() if isinstance(event.key, bytes) else str(event.key)
            await enricher.coalescer.add(key, event)
    finally:
        # On a clean stop, give open windows the chance to flush (and be committed).
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(enricher.coalescer.drain(), settings.export_window_s + 10)


@app.page("/export/stats")
class ExportStats(View):
    # Guarded by the ops token like every view (agents.ops.views.ops_auth, deny by default).
    async def get(self, request: Request) -> Response:
        return self.json({**enricher.stats(), "time": time.time()})

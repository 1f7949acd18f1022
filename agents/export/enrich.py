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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from faust.web import Request, Response, View
from pydantic import ValidationError

from agents.config.runtime import norce_endpoints, sync_config
from agents.export.coalesce import BatchCoalescer
from agents.export.events import NorceEvent, split_entity_key
from agents.export.monitor import History, LagReader, LatencyWindow, Sample
from agents.export.reader import EventsReader, ReadEvent
from agents.export.targets import (
    SUPPORTED_KINDS,
    EntityLookup,
    OutRecord,
    TargetSpec,
    build_records,
    key_value,
    target_specs,
)
from norce.client import NorceClient
from norce.config import NorceCredentials
from norce.errors import NorceError
from norce.retry import RetryPolicy
from streams import gc_tuning, metrics
from streams.kafka import (
    TopicSpec,
    app_producer,
    declare_and_confirm,
    partition_for,
    send_dead_letter,
)
from streams.main import app, settings
from streams.outage import Stopping, wait_for_norce
from streams.own_topics import specs_of
from streams.readiness import UNPROCESSED
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
# Last produced digest per target topic, by entity key (bytes, as on the events topic):
# compacted, partitioned like the events topic. The name is the one Faust gave the
# "export-digests" table's changelog before the reader kept them, so digests carry over.
DIGESTS_TOPIC = TopicSpec(
    f"{settings.app_id}-export-digests-changelog",
    settings.topic_partitions,
    compacted=True,
    replicas=settings.topic_replication_factor,
)

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


@dataclass
class _Entity:
    """One key's due window, decoded."""

    key: str
    kind: str
    entity_id: str
    events: list[ReadEvent]
    decoded: list[NorceEvent]


def _ack(events: list[ReadEvent]) -> None:
    for event in events:
        event.ack()


class _Send(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    partition: int | None = None


async def _send_all_acked(sends: Sequence[_Send]) -> None:
    """Produce every record and wait until the broker acknowledged each; failed ones are
    sent again (backing off) until they are, as ``send_until_acked`` does for one.

    One batch builder (and one delivery future) per topic partition instead of one
    ``send`` per record: per record, a future, its callbacks and the producer's own
    bookkeeping were a tenth of the worker's CPU in a burst. A record without a partition
    goes where ``send`` would put it (aiokafka's partitioner on the key)."""
    todo = list(sends)
    delay = 0.2
    while todo:
        failed: list[_Send] = []
        error: BaseException | None = None
        futures: list[asyncio.Future[Any]] = []
        batches: list[list[_Send]] = []
        try:
            await app.maybe_start_producer()
            producer = app_producer(app)  # aiokafka's, shared with Faust
            by_tp: dict[tuple[str, int], list[_Send]] = {}
            for r in todo:
                partition = r.partition
                if partition is None:
                    partition = await partition_for(producer, r.topic, r.key)
                by_tp.setdefault((r.topic, partition), []).append(r)
            for (topic, partition), records in by_tp.items():
                builder, members = producer.create_batch(), []
                for r in records:
                    headers = list(r.headers)
                    if builder.append(key=r.key, value=r.value, timestamp=None, headers=headers):
                        members.append(r)
                        continue
                    futures.append(await producer.send_batch(builder, topic, partition=partition))
                    batches.append(members)
                    builder, members = producer.create_batch(), [r]
                    if builder.append(key=r.key, value=r.value, timestamp=None, headers=headers):
                        continue
                    raise ValueError(f"record for {topic} larger than a batch")
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                batches.append(members)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # not all enqueued: the records of no future go again
            sent = {id(r) for members in batches for r in members}
            failed, error = [r for r in todo if id(r) not in sent], exc
        # shield: being cancelled must not cancel the producer's own delivery futures
        results = await asyncio.shield(asyncio.gather(*futures, return_exceptions=True))
        for members, result in zip(batches, results, strict=True):
            if isinstance(result, BaseException):
                failed.extend(members)
                error = result
        if not failed:
            return
        if app.should_stop:
            raise RuntimeError(f"stopping with {len(failed)} records not acknowledged")
        log.warning(
            "produce of %d records failed (%s); retrying in %.1fs", len(failed), error, delay
        )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
        todo = failed


class Enricher:
    """The flush side of the coalescer: lookup, map, dedupe, produce, then acknowledge."""

    def __init__(self, specs: dict[str, list[TargetSpec]]) -> None:
        self.specs = specs
        self._client: NorceClient | None = None
        self._lookup: EntityLookup | None = None
        self.coalescer: BatchCoalescer[str, ReadEvent] = BatchCoalescer(
            settings.export_window_s,
            self.flush,
            interval=settings.export_flush_interval_s,
            max_pending=settings.export_max_pending,
            max_flushes=settings.export_max_flushes,
            on_error=self.flush_failed,
        )
        self.records_out = 0
        self.unchanged = 0
        self.dead_letters = 0
        self.query_errors = 0
        self.entities = 0
        self.groups = 0
        self.latencies = LatencyWindow()
        # where a group's time goes (summed over groups, which overlap): for tuning
        self.lookup_seconds = 0.0
        self.produce_seconds = 0.0
        self.history = History(settings.export_monitor_history)

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
                group_size=settings.export_lookup_group_size,
                max_url=settings.export_lookup_max_url,
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
            "waiting": c.pending - c.in_flush,
            "in_flush": c.in_flush,
            "peak_pending": c.peak_pending,
            "max_pending": c.max_pending,
            "entities": self.entities,
            "lookup_groups": self.groups,
            "lookups": self._lookup.lookups if self._lookup else 0,
            "query_errors": self.query_errors,
            "group_lookup_s": round(self.lookup_seconds, 3),
            "group_produce_s": round(self.produce_seconds, 3),
            "records_out": self.records_out,
            "unchanged": self.unchanged,
            "dead_letters": self.dead_letters,
            "flush_errors": c.errors,
            "reader": reader.stats(),
            "gc": gc_tuning.stats(),  # the worker's collector: a burst's hidden cost
            "latency": self.latencies.percentiles(),
            "settings": {
                "window_s": c.window,
                "flush_interval_s": c.interval,
                "group_size": settings.export_lookup_group_size,
                "max_url": settings.export_lookup_max_url,
                "query_concurrency": settings.export_query_concurrency,
            },
        }

    async def flush(self, batches: list[tuple[str, list[ReadEvent]]]) -> None:
        """Every window due now: grouped by kind into Query requests of up to
        ``export_lookup_group_size`` entities, groups concurrently (Query concurrency is
        bounded by the lookup). Each key's events are acknowledged once its records (or
        dead letters) are; a failure of one group leaves the others' acknowledged."""
        by_kind: dict[str, dict[str, _Entity]] = {}
        done: list[list[ReadEvent]] = []  # keys with nothing to look up
        for key, events in batches:
            try:
                entity = await self._decode(key, events)
            except Exception as exc:  # one key's fault (no key, a bad key): its own letters
                await self._reject(events, f"event not usable: {type(exc).__name__}: {exc}")
                continue
            if entity is None:
                done.append(events)
            else:
                by_kind.setdefault(entity.kind, {})[entity.entity_id] = entity
        for events in done:
            _ack(events)
        jobs = [
            self._enrich_group(kind, [entities[i] for i in group])
            for kind, entities in by_kind.items()
            for group in self.lookup.plan(kind, entities)
        ]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def _decode(self, key: str, events: list[ReadEvent]) -> _Entity | None:
        """The window's entity, or None when there is nothing to look up (its undecodable
        events are dead-lettered first)."""
        decoded: list[NorceEvent] = []
        for event in events:
            try:
                decoded.append(NorceEvent.model_validate_json(event.value))
            except ValidationError as exc:
                await self._dead_letter(event, Stage.DECODE, f"not a Norce event: {exc}")
                event.ack()  # settled: a later failure of the key must not letter it twice
        if not decoded:
            return None
        kind, entity_id = split_entity_key(key)
        if not self.specs.get(kind):
            return None  # no target wants this kind: nothing to look up
        try:
            key_value(kind, entity_id)
        except ValueError as exc:
            await self._dead_letter(events[-1], Stage.ENRICH, f"bad entity key: {exc}")
            return None
        coalesced_total.inc(len(decoded), kind=kind)
        return _Entity(key, kind, entity_id, events, decoded)

    async def _enrich_group(self, kind: str, group: list[_Entity]) -> None:
        self.groups += 1
        self.entities += len(group)
        started = time.monotonic()
        ids = [e.entity_id for e in group]

        async def fetch() -> dict[str, Any]:
            lookups_total.inc(kind=kind)
            return await self.lookup.fetch_group(kind, ids)

        try:
            # Norce out or refusing us (401/403, 5xx, timeouts) is not these entities'
            # fault: wait it out, their events stay unacknowledged (offsets held).
            documents = await wait_for_norce(
                fetch,
                stopping=lambda: app.should_stop,
                max_delay=settings.norce_outage_retry_max_s,
            )
        except Stopping:
            return  # not acknowledged: read again after the restart
        except (NorceError, ValueError) as exc:
            self.query_errors += 1
            query_errors_total.inc(kind=kind)
            reason = f"Query lookup failed: {exc}"
            await asyncio.gather(
                *(self._dead_letter(e.events[-1], Stage.ENRICH, reason) for e in group)
            )
            for entity in group:
                _ack(entity.events)
            return
        looked_up = time.monotonic()
        self.lookup_seconds += looked_up - started
        await self._emit(group, documents)
        self.produce_seconds += time.monotonic() - looked_up

    async def _emit(self, group: list[_Entity], documents: dict[str, Any]) -> None:
        """Map the group, produce every changed record at once (one future each, no task
        per record), then per entity: remember the digests, acknowledge its events."""
        out: list[tuple[_Entity, list[OutRecord], float]] = []
        held: dict[str, dict[str, str]] = {}  # entity key -> its digests with the new ones
        for entity in group:
            decoded = entity.decoded
            received_at = min(e.received_at for e in decoded)
            try:
                built = build_records(
                    entity.kind,
                    entity.entity_id,
                    documents.get(entity.entity_id),
                    self.specs[entity.kind],
                    event_types=[e.event_type for e in decoded],
                    received_at=received_at,
                    count=len(decoded),
                )
                records, digest = self._changed(entity, built.records)
            except Exception as exc:  # an encode error, a corrupt digest: this entity's
                reason = f"records not built: {type(exc).__name__}: {exc}"
                await self._reject(entity.events, reason)
                continue
            for spec, error in built.errors:
                await self._dead_letter(
                    entity.events[-1], Stage.ENRICH, f"target {spec.target}: {error.reason}"
                )
            if digest is not None:
                held[entity.key] = digest
            out.append((entity, records, received_at))
        sends = [
            _Send(r.topic, r.key, r.value, r.headers) for _, records, _ in out for r in records
        ]
        encoded: dict[str, bytes] = {}  # entity key -> its digests as produced
        if held:
            # The digests' changelog records go with the target records, acknowledged
            # together, straight to the entity's changelog partition: a table write
            # (``digests[key] = ...``) would queue them in Faust's producer buffer, which
            # takes one at a time and pauses the consumer while it holds more than 100.
            for entity, _records, _ in out:
                digest = held.get(entity.key)
                if digest is None:
                    continue
                partition = entity.events[-1].message.partition
                encoded[entity.key] = value = orjson.dumps(digest)
                sends.append(_Send(DIGESTS_TOPIC.name, entity.key.encode(), value, (), partition))
        await _send_all_acked(sends)
        now = time.time()
        out_counts: Counter[tuple[str, str]] = Counter()  # one metric call per target
        for entity, records, received_at in out:
            for r in records:
                out_counts[r.target, r.kind] += 1
            self.records_out += len(records)
            if entity.key in held:  # the local copy (the changelog record is out)
                partition = entity.events[-1].message.partition
                reader.remember(partition, entity.key.encode(), encoded[entity.key])
            latency = max(0.0, now - received_at)
            latency_seconds.observe(latency, kind=entity.kind)
            self.latencies.add(latency)
            _ack(entity.events)  # only now may the committed offset pass them
        for (target, kind), n in out_counts.items():
            metrics.events_out.inc(n, target=target, kind=kind)

    def _changed(
        self, entity: _Entity, records: Sequence[OutRecord]
    ) -> tuple[list[OutRecord], dict[str, str] | None]:
        """The records that differ from the last ones produced for the key, and the key's
        digests updated with theirs (None: dedupe is off, or nothing changed)."""
        if not settings.export_dedupe:
            return list(records), None
        partition = entity.events[-1].message.partition
        held = reader.digest(partition, entity.key.encode()) or {}
        todo: list[OutRecord] = []
        digest = dict(held)
        for r in records:
            new = r.digest
            if held.get(r.topic) == new:
                self.unchanged += 1
                skipped_total.inc(target=r.target, kind=r.kind)
            else:
                todo.append(r)
                digest[r.topic] = new
        return todo, (digest if todo else None)

    async def flush_failed(
        self, batches: list[tuple[str, list[ReadEvent]]], error: Exception
    ) -> None:
        """The coalescer's last resort: a flush raised. Every event it left unsettled is
        dead-lettered with the reason, so its partition commits again. Not while
        stopping: then they stay unacknowledged and are read again after the restart."""
        if app.should_stop:
            return
        reason = f"enrichment failed: {type(error).__name__}: {error}"
        for _, events in batches:
            await self._reject([e for e in events if not e.acked], reason)

    async def _reject(self, events: list[ReadEvent], reason: str) -> None:
        """Dead-letter each of ``events`` not yet settled (stage ``enrich``) and
        acknowledge them."""
        for event in events:
            if not event.acked:
                await self._dead_letter(event, Stage.ENRICH, reason)
        _ack(events)

    async def _dead_letter(self, event: ReadEvent, stage: str, reason: str) -> None:
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


reader = EventsReader(
    settings,
    norce_events_topic(settings),
    DIGESTS_TOPIC.name,
    enricher.coalescer.add,
    enricher.coalescer.drain,
)
reader.fatal = app.crash
UNPROCESSED.append(lambda: sorted(reader.unprocessed))


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

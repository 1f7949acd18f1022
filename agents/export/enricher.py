"""The flush side of the export coalescer (see :mod:`agents.export.wiring` for the flow):
an entity's due window is looked up once in Query, mapped for every target, produced
unless unchanged, and only then are its events acknowledged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from pydantic import ValidationError

from agents.config.runtime import norce_endpoints
from agents.export.coalesce import BatchCoalescer
from agents.export.events import NorceEvent, split_entity_key
from agents.export.export_metrics import (
    coalesced_total,
    latency_seconds,
    lookups_total,
    query_errors_total,
    skipped_total,
)
from agents.export.monitor import History, LatencyWindow
from agents.export.reader import EventsReader, ReadEvent
from agents.export.targets import (
    EntityLookup,
    OutRecord,
    TargetSpec,
    build_records,
    key_value,
)
from norce.client import NorceClient
from norce.config import NorceCredentials
from norce.errors import NorceError
from norce.retry import RetryPolicy
from streams import gc_tuning, metrics
from streams.kafka import (
    Send,
    send_all_acked,
    send_dead_letter,
)
from streams.outage import Stopping, wait_for_norce
from streams.records import DeadLetter, Stage
from streams.settings import Settings

log = logging.getLogger(__name__)


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


class Enricher:
    """The flush side of the coalescer: lookup, map, dedupe, produce, then acknowledge."""

    def __init__(
        self,
        settings: Settings,
        app: faust.App,
        specs: dict[str, list[TargetSpec]],
        digests_topic: str,
    ) -> None:
        self.settings = settings
        self.app = app  # its producer, its stop, its dead letters
        self.specs = specs
        self.digests_topic = digests_topic
        # The reader that feeds the coalescer keeps the last digests: set once it exists
        # (it is built with the coalescer's callbacks, so after this).
        self.reader: EventsReader | None = None
        self._client: NorceClient | None = None
        self._lookup: EntityLookup | None = None
        self.coalescer: BatchCoalescer[str, ReadEvent] = BatchCoalescer(
            self.settings.export_window_s,
            self.flush,
            interval=self.settings.export_flush_interval_s,
            max_pending=self.settings.export_max_pending,
            max_flushes=self.settings.export_max_flushes,
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
        self.history = History(self.settings.export_monitor_history)

    @property
    def _reader(self) -> EventsReader:
        assert self.reader is not None, "the wiring sets the reader before the first flush"
        return self.reader

    @property
    def lookup(self) -> EntityLookup:
        if self._lookup is None:
            self._client = NorceClient(
                NorceCredentials(
                    client_id=self.settings.norce_client_id,
                    client_secret=self.settings.norce_client_secret,
                    application_id=self.settings.norce_application_id,
                    scope=self.settings.norce_environment,
                ),
                norce_endpoints(self.settings),
                retry=RetryPolicy(
                    max_attempts=self.settings.export_query_max_attempts,
                    base_delay=self.settings.export_query_base_delay_s,
                    max_delay=self.settings.export_query_max_delay_s,
                ),
            )
            self._lookup = EntityLookup(
                self._client.query,
                concurrency=self.settings.export_query_concurrency,
                reference_ttl=self.settings.export_reference_ttl_s,
                group_size=self.settings.export_lookup_group_size,
                max_url=self.settings.export_lookup_max_url,
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
            "reader": self.reader.stats() if self.reader else {},
            "gc": gc_tuning.stats(),  # the worker's collector: a burst's hidden cost
            "latency": self.latencies.percentiles(),
            "settings": {
                "window_s": c.window,
                "flush_interval_s": c.interval,
                "group_size": self.settings.export_lookup_group_size,
                "max_url": self.settings.export_lookup_max_url,
                "query_concurrency": self.settings.export_query_concurrency,
            },
        }

    async def flush(self, batches: list[tuple[str, list[ReadEvent]]]) -> None:
        """Every window due now: grouped by kind into Query requests of up to
        ``export_lookup_group_size`` entities, groups concurrently (Query concurrency is
        bounded by the lookup). Each key's events are acknowledged once its records (or
        dead letters) are; a failure of one group leaves the others' acknowledged."""
        by_kind: dict[str, dict[str, _Entity]] = {}
        done: list[list[ReadEvent]] = []  # keys with nothing to look up
        coalesced: dict[str, int] = {}  # kind -> events: one counter call per kind and flush
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
                coalesced[entity.kind] = coalesced.get(entity.kind, 0) + len(entity.decoded)
        for kind, count in coalesced.items():
            coalesced_total.inc(count, kind=kind)
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
                stopping=lambda: self.app.should_stop,
                max_delay=self.settings.norce_outage_retry_max_s,
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
        sends = [Send(r.topic, r.key, r.value, r.headers) for _, records, _ in out for r in records]
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
                sends.append(Send(self.digests_topic, entity.key.encode(), value, (), partition))
        await send_all_acked(self.app, sends)
        now = time.time()
        out_counts: Counter[tuple[str, str]] = Counter()  # one metric call per target
        for entity, records, received_at in out:
            for r in records:
                out_counts[r.target, r.kind] += 1
            self.records_out += len(records)
            if entity.key in held:  # the local copy (the changelog record is out)
                partition = entity.events[-1].message.partition
                self._reader.remember(partition, entity.key.encode(), encoded[entity.key])
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
        if not self.settings.export_dedupe:
            return list(records), None
        partition = entity.events[-1].message.partition
        held = self._reader.digest(partition, entity.key.encode()) or {}
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
        if self.app.should_stop:
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
        letter = DeadLetter.of(event.message, str(stage), reason)
        await send_dead_letter(self.app, letter, until_acked=True)
        self.dead_letters += 1

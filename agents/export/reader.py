"""The events topic's reader for enrichment: a Faust service with its own consumer group.

Why not a Faust agent (as before): in a burst of webhooks, the agent's per-event
machinery (Faust's consumer thread and its hand-offs to the event loop, the conductor,
the stream) cost about 15% of the worker's CPU per event, measured against this reader in
the same runs (bench/RESULTS.md). Here one ``getmany`` returns a batch, and each record
goes straight to the coalescer.

- Group ``<app id>-export`` on the events topic; partition ``p`` of the events topic and
  of the digests changelog (``<app id>-export-digests-changelog``) belong together.
- Offsets: a record is acknowledged (``ReadEvent.ack``) only once every record produced
  from it (or its dead letter) is acknowledged by the broker; windows of different
  entities finish in any order, so each partition tracks its read offsets and the
  committed offset is the first one not yet acknowledged (``PartitionOffsets``). Commits
  every ``COMMIT_INTERVAL_S``, on revocation and on stop.
- Dedupe digests: the last digest per target topic of the entities of an owned
  partition, in memory as their changelog value (JSON bytes, ~270 bytes per entity with
  two targets), loaded from the changelog partition when the partition is assigned
  (before any of its records is read) and dropped when it is revoked. The enricher
  produces the changelog records with the target records. At most
  ``export_digests_per_partition`` entities per partition are held, the most recently
  written ones: an entity beyond that is "not known", so its next record is produced
  even if identical to its last (a duplicate of the current value, never an older one).
- Revocation and stop wait (at most the window plus ``DRAIN_SLACK_S``) for the windows
  held to flush, then commit; what is not acknowledged by then is read again by the next
  owner (at least once, never lost).
- Memory: ``coalescer.add`` blocks at ``export_max_pending`` events, so this loop stops
  fetching; aiokafka holds at most one fetch per partition ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from streams.kafka import (
    OwnerRebalance,
    group_consumer,
    partition_records,
    resume_where_group_left,
)
from streams.kafka import consumer as changelog_consumer
from streams.settings import Settings
from streams.stop_worker import StopWorker

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 1.0
DRAIN_SLACK_S = 10.0
FETCH_MAX_RECORDS = 2000

Digest = dict[str, str]  # target topic -> digest of the last record produced for the key


class PartitionOffsets:
    """Offsets read from one partition and which of them are acknowledged; ``committable``
    is the offset to commit: one past the longest acknowledged run from the start."""

    __slots__ = ("_done", "_read", "committable", "committed")

    def __init__(self) -> None:
        self._read: deque[int] = deque()
        self._done: set[int] = set()
        self.committable: int | None = None
        self.committed: int | None = None

    def read(self, offset: int) -> None:
        self._read.append(offset)

    def ack(self, offset: int) -> None:
        read, done = self._read, self._done
        if read and read[0] == offset:  # the usual case in a partition's own order
            read.popleft()
            self.committable = offset + 1
        else:
            done.add(offset)
        while read and read[0] in done:
            head = read.popleft()
            done.discard(head)
            self.committable = head + 1

    @property
    def outstanding(self) -> int:
        return len(self._read)


class ReadEvent:
    """One record of the events topic as the enricher handles it (the parts of a Faust
    ``Event`` it used): ``value``, ``message`` (topic, partition, offset, key, value) and
    ``ack()``."""

    __slots__ = ("_offsets", "acked", "message", "value")

    def __init__(self, record: ConsumerRecord, offsets: PartitionOffsets) -> None:
        self.message = record
        self.value = record.value
        self._offsets = offsets
        self.acked = False

    def ack(self) -> None:
        if not self.acked:  # once: a second ack of an offset would stay in ``_done``
            self.acked = True
            self._offsets.ack(self.message.offset)


# (entity key, event, seconds since the event was received)
Sink = Callable[[str, ReadEvent, float], Awaitable[None]]


class EventsReader(Service):
    """See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        changelog_topic: str,
        sink: Sink,
        drain: Callable[[], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.topic = topic
        self.changelog_topic = changelog_topic
        self.group_id = f"{settings.app_id}-export"
        self._sink = sink
        self._drain = drain
        self._consumer: AIOKafkaConsumer | None = None
        self.offsets: dict[int, PartitionOffsets] = {}
        # partition -> entity key -> its digests as the changelog holds them (JSON bytes)
        self.digests: dict[int, dict[bytes, bytes]] = {}
        self.max_digests = settings.export_digests_per_partition
        self.read_total = 0
        self.commits = 0
        self._last_commit = time.monotonic()
        # Assigned partitions that could not be opened ("topic[p]", for /ready), and what
        # stops the worker then (the app's crash, set where the app is known).
        self.unprocessed: set[str] = set()
        self.stop_worker = StopWorker("export events")

    # --- what the enricher asks ------------------------------------------------------

    def digest(self, partition: int, key: bytes) -> Digest | None:
        held = self.digests.get(partition)
        raw = None if held is None else held.get(key)
        return None if raw is None else orjson.loads(raw)  # type: ignore[no-any-return]

    def remember(self, partition: int, key: bytes, encoded: bytes) -> None:
        """The key's digests as produced to the changelog (``orjson`` of a ``Digest``)."""
        held = self.digests.get(partition)
        if held is not None:  # not revoked meanwhile
            # A copy of exact size: the bytes orjson.dumps returns keep its ~4 KiB write
            # buffer allocated (measured: 400 MiB for 100,000 digests, 26 MiB copied).
            _put(held, key, bytes(memoryview(encoded)), self.max_digests)

    # --- lifecycle -------------------------------------------------------------------

    async def on_start(self) -> None:
        self._consumer = group_consumer(
            self.settings,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(self.settings.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=3000,
            max_poll_interval_ms=600_000,
        )
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=OwnerRebalance(self))

    async def on_stop(self) -> None:
        if self._consumer is None:
            return
        await self._drain_held()
        await self._commit(list(self.offsets))
        await self._consumer.stop()  # leaves the group
        self.offsets.clear()
        self.digests.clear()

    @Service.task
    async def _run(self) -> None:
        assert self._consumer is not None
        consumer, sink = self._consumer, self._sink
        while not self.should_stop:
            try:
                batch = await consumer.getmany(timeout_ms=200, max_records=FETCH_MAX_RECORDS)
            except KafkaError as error:
                log.warning("export events fetch failed: %s", error)
                await asyncio.sleep(1.0)
                continue
            now = time.time()
            for tp, records in batch.items():
                offsets = self.offsets.get(tp.partition)
                if offsets is None:
                    # Not open yet (aiokafka hands out a new assignment's records while
                    # ``take`` still loads its digests): read them again once it is (it
                    # resumes the partition), or they would be skipped and a later
                    # commit would pass them. Revoked meanwhile: the next owner reads them.
                    if tp in consumer.assignment():
                        consumer.seek(tp, records[0].offset)
                        consumer.pause(tp)
                    continue
                for record in records:
                    offsets.read(record.offset)
                    # A key that is not UTF-8 (or none) still goes through, so enrichment
                    # dead-letters it: a decode error here would end this loop for good.
                    key = record.key.decode(errors="replace") if record.key is not None else ""
                    # The record's timestamp is intake's (the producer's create time):
                    # its window counts from then (none given: from now).
                    stamp = record.timestamp
                    age = now - stamp / 1000 if stamp is not None and stamp >= 0 else 0.0
                    await sink(key, ReadEvent(record, offsets), age)
                self.read_total += len(records)
            if time.monotonic() - self._last_commit >= COMMIT_INTERVAL_S:
                await self._commit(list(self.offsets))

    # --- rebalance -------------------------------------------------------------------

    async def release(self, revoked: list[TopicPartition]) -> None:
        mine = [tp.partition for tp in revoked if tp.topic == self.topic]
        if not mine:
            return
        await self._drain_held()
        await self._commit(mine)
        for partition in mine:
            self.offsets.pop(partition, None)
            self.digests.pop(partition, None)

    async def take(self, assigned: list[TopicPartition]) -> None:
        mine = [tp for tp in assigned if tp.topic == self.topic]
        mine = [tp for tp in mine if tp.partition not in self.offsets]
        opened = []
        for tp in mine:
            try:
                self.digests[tp.partition] = await self._load_digests(tp.partition)
            except Exception as error:
                # Its events would be fetched and dropped, never committed, silently
                # (aiokafka only logs a listener's error): stop the worker instead.
                self._take_failed(tp, error)
                continue
            self.offsets[tp.partition] = PartitionOffsets()
            opened.append(tp)
            if self._consumer is not None:
                self._consumer.resume(tp)  # paused by _run if it fetched before this
        await self._resume_from_the_agents_group(opened)

    def _take_failed(self, tp: TopicPartition, error: Exception) -> None:
        self.unprocessed.add(f"{tp.topic}[{tp.partition}]")
        if self._consumer is not None:
            self._consumer.pause(tp)
        self.stop_worker.partition_failed(tp, error)

    async def _resume_from_the_agents_group(self, partitions: list[TopicPartition]) -> None:
        """A partition this group never committed starts where the Faust agent that read
        the events topic before this reader (group ``<app id>``) left off, not at the
        earliest retained event: an upgrade neither repeats nor skips events."""
        assert self._consumer is not None
        seeks = await resume_where_group_left(
            self.settings, self._consumer, partitions, self.settings.app_id
        )
        for tp, offset in seeks.items():
            log.info("export events %s: resuming at %d (the agent's group)", tp, offset)

    async def _drain_held(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drain(), self.settings.export_window_s + DRAIN_SLACK_S)

    async def _commit(self, partitions: list[int]) -> None:
        self._last_commit = time.monotonic()
        if self._consumer is None:
            return
        offsets = {}
        for partition in partitions:
            held = self.offsets.get(partition)
            if held is None or held.committable is None or held.committable == held.committed:
                continue
            offsets[TopicPartition(self.topic, partition)] = OffsetAndMetadata(held.committable, "")
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (KafkaError, AssertionError) as error:
            # Not committed is only read again (and deduplicated by the digests).
            log.info("export events commit skipped: %s", error)
            return
        for tp, meta in offsets.items():
            self.offsets[tp.partition].committed = meta.offset
        self.commits += 1

    async def _load_digests(self, partition: int) -> dict[bytes, bytes]:
        """The partition's digests from its changelog (the last record per key wins; a
        null value forgets the key)."""
        reader = changelog_consumer(self.settings)
        await reader.start()
        held: dict[bytes, bytes] = {}
        try:
            tp = TopicPartition(self.changelog_topic, partition)
            reader.assign([tp])
            end = (await reader.end_offsets([tp]))[tp]
            async for record in partition_records(reader, tp, end):
                if record.key is None:
                    continue
                if record.value is None:
                    held.pop(record.key, None)
                else:
                    _put(held, record.key, record.value, self.max_digests)
        finally:
            await reader.stop()
        return held

    def stats(self) -> dict[str, Any]:
        return {
            "group": self.group_id,
            "partitions": sorted(self.offsets),
            "read": self.read_total,
            "commits": self.commits,
            "unacknowledged": sum(o.outstanding for o in self.offsets.values()),
            "digests": sum(len(d) for d in self.digests.values()),
        }


def _put(held: dict[bytes, bytes], key: bytes, value: bytes, limit: int) -> None:
    """Insert as the newest entry; past ``limit`` the least recently written goes."""
    held.pop(key, None)
    held[key] = value
    if len(held) > limit:
        del held[next(iter(held))]

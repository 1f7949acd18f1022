"""The projector: input topics -> decoded, mapped, versioned state, in checkpointed batches.

A Faust service inside the worker (``@app.service``) with its own consumer-group
membership (``<app id>-projection``) on the input topics and their command topics. Why
not a Faust agent and Tables: an agent costs ~160 us of framework CPU per event, and
faust-streaming may commit offsets before its producer buffer (the table changelog) is
drained, so a SIGKILL can lose changes (docs/design-notes.md, "Why the projection is not
a Faust table"). Here every batch goes:

1. read up to ``projection_batch_max`` records (input and command partitions);
2. decode, map, version-check and fold them in memory: the last change of a key wins,
   one value per changed key (``agents.imports.projection``); bad input goes to the
   dead-letter topic; marks queued by the delta submitter (``mark_sent``) are applied;
3. produce every changed value to the state changelog (same partition number as the
   input partition) and every dead letter, and AWAIT every acknowledgement;
4. write the changed values and the offsets they cover to the partition's local
   RocksDB store in one write batch (``agents.imports.store``);
5. only then commit the input offsets.

A crash anywhere re-reads only input that is not committed and converges to the same
state: a replayed change is not newer than what the store or changelog holds and is
dropped, so there are duplicates at most, never losses or regressions. A revocation or
shutdown waits for the batch in flight and checkpoints first. On assignment a store is
trusted only if its checkpoint is at or past the committed offset; otherwise the
partition is rebuilt from its changelog.

Co-partitioning: each input topic ``T`` has a state changelog ``<app>-state.T`` and a
command topic ``<app>-import-commands.T`` with T's partition count; the range assignor
gives partition ``p`` of all three to the same worker. A key's partition is the input
partition it arrived on, so the input's key must determine the state key (Debezium keys
by primary key).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from agents.config.sync_config import InputBinding, SyncConfig
from agents.imports import projection
from agents.imports.cdc import decoder_for
from agents.imports.store import Checkpoint, PartitionStore
from streams import metrics, topics
from streams.dead_letters import note_dead_letter
from streams.kafka import TopicSpec, admin_client, bootstrap_servers, declare_and_confirm
from streams.records import DeadLetter, PipelineError, Stage
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OwnedPartition:
    """An input partition this worker projects, with its store and positions."""

    binding: InputBinding
    input: TopicPartition
    commands: TopicPartition
    state_topic: str
    store: PartitionStore
    next_input: int
    next_commands: int
    # Changed values of the batch in progress: key -> (value, pending before).
    dirty: dict[bytes, tuple[projection.Value, bool]] = field(default_factory=dict)

    def current(self, key: bytes) -> tuple[projection.Value | None, bool]:
        held = self.dirty.get(key)
        if held is not None:
            return held
        value = self.store.get(key)
        return value, value is not None and projection.is_pending(value)

    def put(self, key: bytes, value: projection.Value, was_pending: bool) -> None:
        held = self.dirty.get(key)
        self.dirty[key] = (value, held[1] if held is not None else was_pending)


@dataclass(frozen=True, slots=True)
class PendingItem:
    """A pending key as the delta submitter sends it: its current row and version."""

    key: bytes
    version: list[int]
    row: dict[str, Any]
    partition: int
    topic: str


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.projector.release(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.projector.take(list(assigned))


class Projector(Service):
    """See the module docstring."""

    def __init__(self, settings: Settings, config: SyncConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.config = config
        self.owned: dict[TopicPartition, OwnedPartition] = {}
        self._by_commands: dict[TopicPartition, OwnedPartition] = {}
        self._lock = asyncio.Lock()
        self._marks: list[tuple[str, int, list[tuple[bytes, list[int]]]]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._dead: list[DeadLetter] = []
        self.assigned_once = asyncio.Event()
        self.partitions: dict[str, int] = {}
        self.stats = {"batches": 0, "records": 0, "changelog_records": 0, "rebuilt": 0}

    # --- topics --------------------------------------------------------------------

    def state_topic(self, input_topic: str) -> str:
        return topics.state_topic(self.settings, input_topic)

    def commands_topic(self, input_topic: str) -> str:
        return topics.import_commands_topic(self.settings, input_topic)

    async def _ensure_topics(self) -> None:
        """Learn each input topic's partition count (the worker created the input topics
        at start when configured to), then create and confirm its changelog and command
        topics with the same count, before this service joins its group."""
        admin = admin_client(self.settings)
        await admin.start()
        try:
            waiting_logged = False
            while not self.should_stop:
                described = await _partition_counts(admin, self.config.topics)
                missing = [t for t in self.config.topics if t not in described]
                if not missing:
                    self.partitions = described
                    break
                if not waiting_logged:
                    log.warning("projection waits for input topics %s to exist", missing)
                    waiting_logged = True
                await asyncio.sleep(2.0)
        finally:
            await admin.close()
        rf = self.settings.topic_replication_factor
        specs = []
        for topic, count in self.partitions.items():
            specs.append(TopicSpec(self.state_topic(topic), count, compacted=True, replicas=rf))
            specs.append(TopicSpec(self.commands_topic(topic), count, replicas=rf))
        await declare_and_confirm(self.settings, specs, should_stop=lambda: self.should_stop)

    # --- lifecycle -----------------------------------------------------------------

    async def on_start(self) -> None:
        await self._ensure_topics()
        servers = bootstrap_servers(self.settings)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=servers,
            acks="all",
            linger_ms=5,
            max_batch_size=1024 * 1024,
            max_request_size=16 * 1024 * 1024,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            group_id=f"{self.settings.app_id}-projection",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=int(self.settings.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=3000,
            max_poll_interval_ms=600_000,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await self._consumer.start()
        subscribed = [*self.partitions, *(self.commands_topic(t) for t in self.partitions)]
        self._consumer.subscribe(subscribed, listener=_Rebalance(self))

    async def on_stop(self) -> None:
        if self._consumer is not None:
            async with self._lock:
                await self._checkpoint()
                await self._commit(list(self.owned.values()))
            await self._consumer.stop()  # leaves the group
        async with self._lock:
            for owned in self.owned.values():
                owned.store.close()
            self.owned.clear()
            self._by_commands.clear()
        if self._producer is not None:
            await self._producer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not self.should_stop:
            try:
                batch = await consumer.getmany(
                    timeout_ms=self.settings.projection_fetch_wait_ms,
                    max_records=self.settings.projection_batch_max,
                )
            except KafkaError as error:
                log.warning("projection fetch failed: %s", error)
                await asyncio.sleep(1.0)
                continue
            async with self._lock:
                touched = self._fold(batch)
                touched |= self._apply_marks()
                if not touched:
                    continue
                await self._checkpoint()
                done = [
                    o for o in self.owned.values() if o.input in touched or o.commands in touched
                ]
            await self._commit(done)

    # --- rebalance -----------------------------------------------------------------

    async def release(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:  # waits for the batch in flight
            await self._checkpoint()
            gone = [self.owned[tp] for tp in revoked if tp in self.owned]
            await self._commit(gone)
            for owned in gone:
                owned.store.close()
                del self.owned[owned.input]
                self._by_commands.pop(owned.commands, None)

    async def take(self, assigned: list[TopicPartition]) -> None:
        assert self._consumer is not None
        async with self._lock:
            for tp in assigned:
                binding = self._binding_of_input(tp.topic)
                if binding is None or tp in self.owned:
                    continue
                owned = await self._open(binding, tp)
                self.owned[tp] = owned
                self._by_commands[owned.commands] = owned
                self._consumer.seek(owned.input, owned.next_input)
                self._consumer.seek(owned.commands, owned.next_commands)
        self.assigned_once.set()

    def _binding_of_input(self, topic: str) -> InputBinding | None:
        if topic not in self.partitions:
            return None
        return self.config.binding_for_topic(topic)

    def _store_path(self, tp: TopicPartition) -> Path:
        return (
            Path(self.settings.data_dir)
            / self.settings.app_id
            / "projection"
            / f"{tp.topic}-{tp.partition}"
        )

    async def _open(self, binding: InputBinding, tp: TopicPartition) -> OwnedPartition:
        assert self._consumer is not None
        commands_tp = TopicPartition(self.commands_topic(tp.topic), tp.partition)
        committed_input = await self._consumer.committed(tp) or 0
        committed_commands = await self._consumer.committed(commands_tp) or 0
        path = self._store_path(tp)
        store = PartitionStore(path)
        checkpoint = store.checkpoint()
        if (
            checkpoint is None
            or checkpoint.input < committed_input
            or checkpoint.commands < committed_commands
        ):
            # Another worker advanced this partition since (or there is no store): the
            # changelog is the truth.
            store.close()
            started = time.monotonic()
            store = PartitionStore.fresh(path)
            checkpoint = Checkpoint(committed_input, committed_commands)
            count = await self._rebuild(store, tp.partition, self.state_topic(tp.topic), checkpoint)
            self.stats["rebuilt"] += 1
            log.info(
                "projection %s[%d]: rebuilt %d changelog records in %.1fs (from offset %d)",
                tp.topic,
                tp.partition,
                count,
                time.monotonic() - started,
                committed_input,
            )
        return OwnedPartition(
            binding=binding,
            input=tp,
            commands=commands_tp,
            state_topic=self.state_topic(tp.topic),
            store=store,
            next_input=checkpoint.input,
            next_commands=checkpoint.commands,
        )

    async def _rebuild(
        self, store: PartitionStore, partition: int, topic: str, checkpoint: Checkpoint
    ) -> int:
        reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(self.settings),
            enable_auto_commit=False,
            # Not the default "latest": the reset that assign() schedules can land after
            # seek_to_beginning, and the rebuild then reads nothing (an empty store).
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await reader.start()
        try:
            tp = TopicPartition(topic, partition)
            reader.assign([tp])
            end = (await reader.end_offsets([tp]))[tp]
            await reader.seek_to_beginning(tp)
            records: list[tuple[bytes, bytes | None]] = []
            while await reader.position(tp) < end:
                fetched = await reader.getmany(tp, timeout_ms=1000, max_records=10_000)
                for record in fetched.get(tp, []):
                    if record.offset < end and record.key is not None:
                        records.append((record.key, record.value))
            return store.load(records, checkpoint)
        finally:
            await reader.stop()

    # --- the batch -----------------------------------------------------------------

    def _fold(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> set[TopicPartition]:
        touched: set[TopicPartition] = set()
        now = time.time()
        for tp, records in batch.items():
            if not records:
                continue
            owned = self.owned.get(tp)
            if owned is not None:
                self._fold_changes(owned, records, now)
                owned.next_input = records[-1].offset + 1
                touched.add(tp)
                continue
            owned = self._by_commands.get(tp)
            if owned is not None:
                self._fold_commands(owned, records, now)
                owned.next_commands = records[-1].offset + 1
                touched.add(tp)
        self.stats["records"] += sum(len(r) for r in batch.values())
        return touched

    def _fold_changes(
        self, owned: OwnedPartition, records: list[ConsumerRecord], now: float
    ) -> None:
        binding = owned.binding
        source, kind = binding.source, binding.kind
        applied = stale = 0
        decoder = decoder_for(binding)
        for record in records:
            try:
                mapped = decoder(record.value, record.key)
            except PipelineError as error:
                self._dead_letter(record, error)
                continue
            except Exception as error:  # a mapping hook's bug must not stop the stream
                reason = f"{type(error).__name__}: {error}"
                self._dead_letter(record, PipelineError(Stage.MAP, reason))
                continue
            if mapped is None:  # a tombstone after a delete: the delete itself counted
                continue
            key = mapped.state_key.encode()
            current, was_pending = owned.current(key)
            new = projection.fold_change(current, mapped.version, mapped.row, mapped.deleted, now)
            applied += 1
            if new is None:
                stale += 1
                continue
            owned.put(key, new, was_pending)
        if applied:
            metrics.events_in.inc(applied, source=source, kind=kind)
            metrics.applied_changes.inc(applied, source=source, kind=kind)
        if stale:
            metrics.stale_dropped.inc(stale, source=source, kind=kind)

    def _fold_commands(
        self, owned: OwnedPartition, records: list[ConsumerRecord], now: float
    ) -> None:
        for record in records:
            try:
                command = orjson.loads(record.value)
            except orjson.JSONDecodeError:
                log.warning("import command %s@%d not JSON; skipped", record.topic, record.offset)
                continue
            if command.get("type") != "requeue" or record.key is None:
                continue
            current, was_pending = owned.current(record.key)
            new = projection.requeue(current, now)
            if new is not None:
                owned.put(record.key, new, was_pending)

    def _apply_marks(self) -> set[TopicPartition]:
        touched: set[TopicPartition] = set()
        marks, self._marks = self._marks, []
        for topic, partition, items in marks:
            owned = self.owned.get(TopicPartition(topic, partition))
            if owned is None:
                continue  # given away meanwhile: its new owner sends the keys again
            for key, version in items:
                current, was_pending = owned.current(key)
                new = projection.mark_sent(current, version)
                if new is not None:
                    owned.put(key, new, was_pending)
                    touched.add(owned.input)
        return touched

    def _dead_letter(self, record: ConsumerRecord, error: PipelineError) -> None:
        letter = DeadLetter.from_error(
            error,
            key=record.key,
            value=record.value,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        note_dead_letter(letter)
        self._dead.append(letter)

    async def _checkpoint(self) -> None:
        """Produce the dirty values and dead letters, await every ack, then write the
        stores. Retries until the broker takes them (nothing is committed meanwhile)."""
        assert self._producer is not None
        dead, self._dead = self._dead, []
        dirty = [o for o in self.owned.values() if o.dirty]
        if not dirty and not dead:
            for owned in self.owned.values():
                owned.store.write({}, Checkpoint(owned.next_input, owned.next_commands))
            return
        delay = 0.5
        while True:
            try:
                await self._produce(dirty, dead)
                break
            except KafkaError as error:
                if self.should_stop and not self.owned:
                    raise
                log.warning(
                    "projection checkpoint: produce failed (%s); retrying in %.1fs", error, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._maybe_crash("after_produce")
        for owned in self.owned.values():
            changed = {
                key: (projection.encode(value), projection.is_pending(value), was_pending)
                for key, (value, was_pending) in owned.dirty.items()
            }
            owned.store.write(changed, Checkpoint(owned.next_input, owned.next_commands))
            owned.dirty.clear()
        self._maybe_crash("after_store")
        self.stats["batches"] += 1

    def _maybe_crash(self, point: str) -> None:
        """Testing only (``crash_in_checkpoint``): die inside a checkpoint."""
        if self.settings.crash_in_checkpoint != point:
            return
        if self.stats["batches"] + 1 >= self.settings.crash_at_checkpoint:
            log.warning("crash_in_checkpoint=%s: SIGKILL now", point)
            os.kill(os.getpid(), signal.SIGKILL)

    async def _produce(self, dirty: list[OwnedPartition], dead: list[DeadLetter]) -> None:
        assert self._producer is not None
        producer = self._producer
        futures = []
        for owned in dirty:
            builder = producer.create_batch()
            for key, (value, _) in owned.dirty.items():
                encoded = projection.encode(value)
                if builder.append(key=key, value=encoded, timestamp=None) is None:
                    futures.append(
                        await producer.send_batch(
                            builder, owned.state_topic, partition=owned.input.partition
                        )
                    )
                    builder = producer.create_batch()
                    builder.append(key=key, value=encoded, timestamp=None)
            if builder.record_count():
                futures.append(
                    await producer.send_batch(
                        builder, owned.state_topic, partition=owned.input.partition
                    )
                )
            self.stats["changelog_records"] += len(owned.dirty)
        for letter in dead:
            key = (letter.state_key or "").encode() or None
            futures.append(await producer.send(self.settings.dlq_topic, letter.to_bytes(), key=key))
        if futures:
            await asyncio.gather(*futures)

    async def _commit(self, owned: list[OwnedPartition]) -> None:
        if not owned or self._consumer is None:
            return
        offsets = {}
        for o in owned:
            offsets[o.input] = OffsetAndMetadata(o.next_input, "")
            offsets[o.commands] = OffsetAndMetadata(o.next_commands, "")
        try:
            await self._consumer.commit(offsets)
        except (KafkaError, AssertionError) as error:
            # The stores hold the checkpoint; a later commit (or the next owner's
            # replay, deduplicated by version) covers it.
            log.info("projection commit skipped: %s", error)

    # --- what other parts of the worker ask --------------------------------------

    @property
    def ready(self) -> bool:
        return self.assigned_once.is_set()

    def mark_sent(self, items: list[PendingItem]) -> None:
        """Keys Norce accepted at these versions (the JobId is recorded); applied at the
        next checkpoint, ahead of any backlog of input."""
        by_partition: dict[tuple[str, int], list[tuple[bytes, list[int]]]] = {}
        for item in items:
            by_partition.setdefault((item.topic, item.partition), []).append(
                (item.key, item.version)
            )
        for (topic, partition), keys in by_partition.items():
            self._marks.append((topic, partition, keys))

    async def pending_items(
        self, binding: InputBinding, limit: int | None = None
    ) -> list[PendingItem]:
        """This worker's pending keys of the binding, with their current rows."""
        prefix = f"{binding.source}|{binding.kind}|".encode()
        items: list[PendingItem] = []
        async with self._lock:
            for owned in self.owned.values():
                if owned.binding.pair != binding.pair:
                    continue
                keys = list(owned.store.pending_keys(prefix))
                for key, value in zip(keys, owned.store.get_many(keys), strict=True):
                    if value is None or not projection.is_pending(value):
                        continue
                    items.append(
                        PendingItem(
                            key,
                            list(value["v"]),
                            value["row"],
                            owned.input.partition,
                            owned.input.topic,
                        )
                    )
                    if limit is not None and len(items) >= limit:
                        return items
        return items

    def pending_count(self, binding: InputBinding) -> int:
        prefix = f"{binding.source}|{binding.kind}|".encode()
        return sum(
            sum(1 for _ in o.store.pending_keys(prefix))
            for o in self.owned.values()
            if o.binding.pair == binding.pair
        )

    def backlog(self) -> dict[int, dict[str, dict[str, float]]]:
        """Pending keys per owned partition number and ``source|kind``, with the oldest
        pending time (for the ops views)."""
        reports: dict[int, dict[str, dict[str, float]]] = {}
        for owned in self.owned.values():
            pair = f"{owned.binding.source}|{owned.binding.kind}"
            report = reports.setdefault(owned.input.partition, {})
            keys = list(owned.store.pending_keys(f"{pair}|".encode()))
            if not keys:
                continue
            oldest = float("inf")
            for start in range(0, len(keys), 10_000):
                for value in owned.store.get_many(keys[start : start + 10_000]):
                    if value is not None and value.get("p") is not None:
                        oldest = min(oldest, float(value["p"]))
            report[pair] = {"keys": len(keys), "oldest": oldest}
        return reports


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Topic -> partition count, for the topics the broker knows with every partition led.
    Asks without auto-creation: admin.describe_topics would let a broker with
    ``auto.create.topics.enable`` create a missing topic with its default partitions."""
    request = MetadataRequest(names, allow_auto_topic_creation=False)
    try:
        described = (await admin._send_request(request)).to_object()["topics"]
    except KafkaError:
        return {}
    counts = {}
    for topic in described:
        if topic.get("error_code", 0) != 0:
            continue
        partitions = topic.get("partitions") or []
        if partitions and all(p.get("leader", -1) >= 0 for p in partitions):
            counts[topic["topic"]] = len(partitions)
    return counts

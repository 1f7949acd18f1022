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
   fetch and fold again until a checkpoint is due (``checkpoint_budget.py``: an
   interval, a cap on the changed keys held, idle input, marks), so a key changed many
   times in that while is written once;
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

This module is the loop (fetch, fold, rebalance). Beside it: the checkpoint of steps 3-5
(``projector_checkpoint.py``), opening an assigned partition from its store or rebuilding
it from the changelog (``projector_recovery.py``), what the rest of the worker asks
(``pending_index.py``), the state of one owned partition (``owned_partition.py``) and the
slicing of CPU work (``slices.py``); the worker's instance is built by
``wiring.install``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from mode import Service

from agents.config.sync_config import InputBinding, SyncConfig
from agents.imports import projection
from agents.imports.avro import schema_id
from agents.imports.cdc import NotAChange, decoder_for
from agents.imports.checkpoint_budget import CheckpointBudget
from agents.imports.owned_partition import OwnedPartition
from agents.imports.pending_index import PendingIndex
from agents.imports.projector_checkpoint import CheckpointSteps
from agents.imports.projector_recovery import RecoverySteps
from agents.imports.registry import SchemaRegistry, close_all, registry_for
from agents.imports.slices import YIELD_CHECK, Pacer
from streams import metrics, pacing, topics
from streams.dead_letters import note_dead_letter
from streams.kafka import (
    OwnerRebalance,
    TopicSpec,
    admin_client,
    declare_and_confirm,
    group_consumer,
    partition_counts,
    producer,
)
from streams.messages import RequeueCommand
from streams.pacing import getmany_sliced
from streams.records import DeadLetter, PipelineError, Stage
from streams.settings import Settings
from streams.stop_worker import StopWorker
from streams.topic_checks import require_compacted

log = logging.getLogger(__name__)
encode = projection.encode
# The stage of a dead letter whose value could not be encoded for the state changelog.
ENCODE = "encode"
# The largest encoded value the fold accepts: below the 1 MiB default max.message.bytes
# of a state topic created before the service set its own (STATE_TOPIC_CONFIG), so the
# checkpoint never meets a value the broker refuses for good.
STATE_VALUE_MAX_BYTES = 900 * 1024
# Topics the projection creates: room for a batch of values (the producer's batches are
# 1 MiB; a record larger than a batch goes alone).
STATE_TOPIC_CONFIG = {"max.message.bytes": str(16 * 1024 * 1024)}


class Projector(CheckpointSteps, RecoverySteps, PendingIndex, Service):
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
        self.checkpoints = 0  # checkpoints that wrote changes (the crash hook counts them)
        # "source|kind" -> time of the last truncate seen by this worker (for the ops views;
        # in memory: a restart forgets it, the metric and the log line remain).
        self.truncated: dict[str, float] = {}
        # Assigned partitions that could not be opened ("topic[p]", for /ready), and what
        # stops the worker then (the app's crash, set where the app is known).
        self.unprocessed: set[str] = set()
        self.stop_worker = StopWorker("projection")
        pacing.use(settings.projection_step_back)  # the fold's step-back (streams.pacing)
        self._budget = CheckpointBudget(
            settings.projection_checkpoint_interval_ms / 1000,
            settings.projection_checkpoint_keys,
            quiet_s=settings.projection_checkpoint_quiet_ms / 1000,
        )

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
                described = await partition_counts(admin, self.config.topics)
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
            specs.append(
                TopicSpec(
                    self.state_topic(topic),
                    count,
                    compacted=True,
                    replicas=rf,
                    config=STATE_TOPIC_CONFIG,
                )
            )
            specs.append(TopicSpec(self.commands_topic(topic), count, replicas=rf))
        await declare_and_confirm(self.settings, specs, should_stop=lambda: self.should_stop)
        # An existing changelog someone created with delete retention: refuse to start.
        await require_compacted(self.settings, [self.state_topic(t) for t in self.partitions])

    # --- lifecycle -----------------------------------------------------------------

    async def on_start(self) -> None:
        await self._ensure_topics()
        self._producer = producer(
            self.settings,
            acks="all",
            linger_ms=5,
            max_batch_size=1024 * 1024,
            max_request_size=16 * 1024 * 1024,
        )
        await self._producer.start()
        self._consumer = group_consumer(
            self.settings,
            group_id=topics.projection_group(self.settings),
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
        self._consumer.subscribe(subscribed, listener=OwnerRebalance(self))

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
        await close_all()

    @Service.task
    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not self.should_stop:
            try:
                batch = await getmany_sliced(  # decoded in slices: the loop runs between
                    consumer,
                    timeout_ms=self.settings.projection_fetch_wait_ms,
                    max_records=self.settings.projection_batch_max,
                )
            except KafkaError as error:
                log.warning("projection fetch failed: %s", error)
                await asyncio.sleep(1.0)
                continue
            if not await self._fetch_schemas(batch):
                break  # stopping during a registry outage: nothing folded, nothing committed
            async with self._lock:
                budget = self._budget
                budget.folded(await self._fold(batch))
                marked = self._apply_marks()
                budget.folded(marked)
                held = sum(len(o.dirty) for o in self.owned.values())
                caught_up = bool(batch) and self._caught_up(consumer)
                if not budget.due(held, idle=not batch, marked=bool(marked), caught_up=caught_up):
                    continue  # folding on: a key changed again is checkpointed once
                touched = budget.take()
                done = [
                    o for o in self.owned.values() if o.input in touched or o.commands in touched
                ]
                # Returns once the changelog records are sent: their acknowledgement, the
                # store write and the commit go on while the next batch is fetched and
                # folded (projector_checkpoint.CheckpointSteps).
                await self._checkpoint_start(done)

    def _caught_up(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether the fold has reached the end of every owned input partition as its
        last fetch saw it (the high watermark aiokafka keeps per partition): the backlog
        is folded, so the budget need not wait for a fetch to come back empty."""
        assigned = consumer.assignment()  # highwater() asserts the partition is assigned
        for owned in self.owned.values():
            if owned.input not in assigned:
                return False
            highwater = consumer.highwater(owned.input)
            if highwater is None or owned.next_input < highwater:
                return False
        return bool(self.owned)

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
                try:
                    owned = await self._open(binding, tp)
                except Exception as error:
                    # Not a store problem (those are rebuilt): the changelog cannot be
                    # read, say. An assigned partition nobody processes would stall
                    # silently (aiokafka only logs a listener's error): stop the worker.
                    self._take_failed(tp, error)
                    continue
                self.owned[tp] = owned
                self._by_commands[owned.commands] = owned
                self._consumer.seek(owned.input, owned.next_input)
                self._consumer.seek(owned.commands, owned.next_commands)
        self.assigned_once.set()

    def _take_failed(self, tp: TopicPartition, error: Exception) -> None:
        assert self._consumer is not None
        self.unprocessed.add(f"{tp.topic}[{tp.partition}]")
        self._consumer.pause(tp, TopicPartition(self.commands_topic(tp.topic), tp.partition))
        self.stop_worker.partition_failed(tp, error)

    def _binding_of_input(self, topic: str) -> InputBinding | None:
        if topic not in self.partitions:
            return None
        return self.config.binding_for_topic(topic)

    async def _fetch_schemas(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> bool:
        """Fetch the writer schemas of a batch's Avro records before the (sync) fold, so the
        decoder only reads the cache. Waits out a registry outage (``registry.resolve``);
        outside the lock, so a rebalance can go on meanwhile. False: stopping."""
        wanted: dict[SchemaRegistry, set[int | None]] = {}
        for tp, records in batch.items():
            binding = self._binding_of_input(tp.topic)
            if binding is None or binding.schema_registry is None:
                continue
            registry = registry_for(binding.schema_registry)
            ids = wanted.setdefault(registry, set())
            # Keys too: the source key without key_columns, and a delete without a
            # before-image takes its columns from the key.
            for record in records:  # a message not in the wire format has no id: dead-lettered
                ids.add(schema_id(record.value))
                ids.add(schema_id(record.key))
        for registry, found in wanted.items():
            needed = {i for i in found if i is not None}
            if registry.unknown(needed) and not await registry.resolve(
                needed, lambda: self.should_stop, self.settings.schema_registry_retry_max_s
            ):
                return False
        return True

    async def _fold(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> set[TopicPartition]:
        touched: set[TopicPartition] = set()
        now = time.time()
        for tp, records in batch.items():
            if not records:
                continue
            owned = self.owned.get(tp)
            if owned is not None:
                await self._fold_changes(owned, records, now)
                owned.next_input = records[-1].offset + 1
                touched.add(tp)
                continue
            owned = self._by_commands.get(tp)
            if owned is not None:
                self._fold_commands(owned, records, now)
                owned.next_commands = records[-1].offset + 1
                touched.add(tp)
        return touched

    async def _fold_changes(
        self, owned: OwnedPartition, records: list[ConsumerRecord], now: float
    ) -> None:
        binding = owned.binding
        source, kind = binding.source, binding.kind
        applied = stale = 0
        decoder = decoder_for(binding)
        fold_change = projection.fold_change
        # The batch's values, the cache and the store, read here without a method call
        # per record (OwnedPartition.current and .put, inlined): this loop runs per event.
        dirty, cache = owned.dirty, owned.cache
        inflight = owned.inflight  # once stored, still the values the store holds
        pacer = Pacer()
        for index, record in enumerate(records):
            if not index % YIELD_CHECK:
                await pacer.tick()
            try:
                mapped = decoder(record.value, record.key)
            except NotAChange as signal_:
                self._not_a_change(binding, record, signal_.kind, now)
                continue
            except PipelineError as error:
                self._dead_letter(record, error)
                continue
            except Exception as error:  # a mapping hook's bug must not stop the stream
                self._dead_letter(record, _unexpected(Stage.MAP, error))
                continue
            if mapped is None:  # a tombstone after a delete: the delete itself counted
                continue
            # Past the mapping nothing one record holds may stop the batch either (a
            # value the encoder refuses, a digest of it): that record is dead-lettered.
            try:
                key = mapped[0].encode()  # state_key
                held = dirty.get(key)
                if held is not None:
                    current, stored_since = held
                else:
                    # The checkpoint in flight before the cache: the cache may hold an
                    # older value of the key, the store does until that checkpoint lands.
                    sent = inflight.get(key)
                    current = sent[0] if sent is not None else cache.get(key)
                    if current is None:
                        current, stored_since = owned.current(key)
                    else:
                        stored_since = current.get("p")
                new = fold_change(
                    current,
                    mapped[2],  # version
                    mapped[3],  # row
                    mapped[4],  # deleted
                    now,
                    mapped[1],  # version_key
                    mapped[5],  # history
                    mapped[6],  # snapshot
                )
                applied += 1
                if new is None:
                    stale += 1
                    continue
                # Encoded here so a value the changelog cannot carry is this record's
                # dead letter, not the checkpoint's crash. Not kept: orjson's bytes hold
                # a 4 KiB buffer each, and the checkpoint encodes the key's last value.
                size = len(encode(new))
                if size > STATE_VALUE_MAX_BYTES:
                    raise ValueError(
                        f"value of {size} bytes, more than the state changelog "
                        f"takes ({STATE_VALUE_MAX_BYTES})"
                    )
            except Exception as error:
                self._dead_letter(record, _unexpected(ENCODE, error))
                continue
            # owned.put (held: the pending time as stored stays the batch's first read).
            dirty[key] = (new, stored_since)
        if applied:
            metrics.events_in.inc(applied, source=source, kind=kind)
            owned.folded += applied  # counted applied once stored (OwnedPartition.settle)
        if stale:
            metrics.stale_dropped.inc(stale, source=source, kind=kind)

    def _not_a_change(
        self, binding: InputBinding, record: ConsumerRecord, kind: str, now: float
    ) -> None:
        metrics.non_row_messages.inc(source=binding.source, kind=binding.kind, type=kind)
        if kind != "truncate":
            return
        # Never deletes: the rows Norce holds stay until a full import decides.
        metrics.truncates.inc(source=binding.source, kind=binding.kind)
        self.truncated[f"{binding.source}|{binding.kind}"] = now
        log.warning(
            "truncate on %s[%d]@%d (%s %s): no rows deleted; run a full import if the "
            "table is meant to be empty",
            record.topic,
            record.partition,
            record.offset,
            binding.source,
            binding.kind,
        )

    def _fold_commands(
        self, owned: OwnedPartition, records: list[ConsumerRecord], now: float
    ) -> None:
        for record in records:
            try:
                RequeueCommand.from_bytes(record.value)  # the only command so far
            except ValueError as error:  # not JSON, or not a requeue command
                log.warning("import command %s@%d skipped: %s", record.topic, record.offset, error)
                continue
            if record.key is None:
                continue
            current, stored_since = owned.current(record.key)
            new = projection.requeue(current, now)
            if new is not None:
                owned.put(record.key, new, stored_since)

    def _apply_marks(self) -> set[TopicPartition]:
        touched: set[TopicPartition] = set()
        marks, self._marks = self._marks, []
        for topic, partition, items in marks:
            owned = self.owned.get(TopicPartition(topic, partition))
            if owned is None:
                continue  # given away meanwhile: its new owner sends the keys again
            for key, version in items:
                current, stored_since = owned.current(key)
                new = projection.mark_sent(current, version)
                if new is not None:
                    owned.put(key, new, stored_since)
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

    # --- what other parts of the worker ask --------------------------------------

    @property
    def ready(self) -> bool:
        return self.assigned_once.is_set() and not self.unprocessed


def _unexpected(stage: str, error: Exception) -> PipelineError:
    """A dead letter's error for an exception no stage expected (one line, bounded)."""
    reason = f"{type(error).__name__}: {error}"
    return PipelineError(stage, reason if len(reason) <= 500 else f"{reason[:500]}...")

"""The projector's checkpoint: produce every changed value and dead letter and await the
acknowledgements, then write the stores, then commit the input offsets. Part of
:class:`agents.imports.projector.Projector`."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from agents.imports import projection
from agents.imports.owned_partition import OwnedPartition
from agents.imports.slices import YIELD_CHECK, Pacer
from agents.imports.store import Change, Checkpoint
from streams import dead_letters, fault_points
from streams.pacing import before_long_step
from streams.records import DeadLetter

log = logging.getLogger(__name__)
# Built per changed key per checkpoint: skips NamedTuple's Python-level __new__.
_new_change = tuple.__new__
encode = projection.encode
# Keys added to a store write between two checks of the slice clock.
STORE_PART = 500


def _exact(data: bytes) -> bytes:
    return memoryview(data).tobytes()


def _closed(builder: Any) -> Any:
    """A record batch closed to further appends: aiokafka sends a closed batch at once,
    an open one only after the producer's linger (5 ms per checkpoint, waited for)."""
    builder.close()
    return builder


class CheckpointSteps:
    """The projector's checkpoint (uses its producer, consumer, owned partitions and
    pending dead letters).

    Pipelined: :meth:`_checkpoint_start` takes what the fold changed so far (the
    partitions' ``dirty`` values become their ``inflight`` ones, still read by the next
    fold) and hands it to a background step that awaits the acknowledgements, writes the
    stores and commits; the loop fetches and folds the next batch meanwhile. The next
    checkpoint starts only when that step is done, so produce -> store -> commit keeps
    its order per checkpoint and checkpoints follow one another: a crash loses at most
    folds that were never committed, re-read and folded again."""

    _inflight: asyncio.Future[None] | None = None

    async def _checkpoint(self) -> None:
        """Checkpoint everything folded so far, and wait until it is stored (a
        revocation, a stop)."""
        await self._checkpoint_start([])
        await self._settled()

    async def store_folded(self) -> None:
        """Store what was folded so far (a delta reads the stores next): checkpoint it,
        or wait for the checkpoint in flight. The offsets are committed by the next
        checkpoint the budget starts (the stores may run ahead of the commit)."""
        async with self._lock:
            if any(owned.dirty for owned in self.owned.values()):
                await self._checkpoint()
            else:
                await self._settled()

    async def _settled(self) -> None:
        """Wait for the checkpoint in flight. Its error is raised here, and again at every
        later call: nothing is committed after a checkpoint that failed."""
        inflight = self._inflight
        if inflight is None:
            return
        # Shielded: a waiter cancelled (the service stopping) leaves the checkpoint
        # running, and on_stop waits for it again before its own.
        await asyncio.shield(inflight)
        if self._inflight is inflight:
            self._inflight = None

    async def _checkpoint_start(self, commit: list[OwnedPartition]) -> None:
        """Start checkpointing the values folded so far and dead letters, then commit the
        input offsets of ``commit``; returns once the changelog records are handed to the
        producer (after the previous checkpoint finished)."""
        assert self._producer is not None
        await self._settled()
        dead, self._dead = self._dead, []
        # One pass over the changed keys builds both what the store writes and the
        # changelog's record batches (a pass per step cost a Python loop per key each).
        changes, batches = await self._changes()
        writes = []
        for owned in self.owned.values():
            checkpoint = Checkpoint(owned.next_input, owned.next_commands)
            writes.append((owned, changes.get(owned.input, {}), checkpoint))
            owned.hand_over()
        finish = self._finish(changes, batches, dead, writes, _offsets(commit))
        self._inflight = asyncio.ensure_future(finish)

    async def _finish(
        self,
        changes: dict[TopicPartition, dict[bytes, Change]],
        batches: list[tuple[Any, str, int]],
        dead: list[DeadLetter],
        writes: list[tuple[OwnedPartition, dict[bytes, Change], Checkpoint]],
        offsets: dict[TopicPartition, OffsetAndMetadata],
    ) -> None:
        """Produce, await every ack, write the stores, commit. Retries until the broker
        takes them (nothing is committed meanwhile)."""
        delay = 0.5
        while changes or dead:
            try:
                # Dead letters the broker refuses for good come back stripped (or are
                # dropped): a record's own fault never holds a retry loop.
                dead = await self._produce(batches, dead)
                batches = []  # acknowledged: a retry sends only the stripped letters
                if not dead:
                    break
            except KafkaError as error:
                log.warning(
                    "projection checkpoint: produce failed (%s); retrying in %.1fs", error, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                batches = self._batches(changes, writes)  # a builder is spent once sent
        if changes:
            fault_points.reached("checkpoint.after_produce")
        # Built in parts with the loop running between them (a batch's keys of one
        # partition held it for milliseconds), each partition's write still one atomic
        # write; the next fold reads the values in flight until settle().
        pacer = Pacer()
        for owned, changed, checkpoint in writes:
            write = owned.store.begin()
            items = iter(changed.items())
            while part := list(itertools.islice(items, STORE_PART)):
                owned.store.add(write, part)
                await pacer.tick()
            await before_long_step()  # RocksDB's write of the whole batch, in one call
            owned.store.commit(write, checkpoint)
            owned.settle()
            await pacer.tick()
        if changes:
            fault_points.reached("checkpoint.after_store")
            self.checkpoints += 1
        await self._commit_offsets(offsets)

    async def _changes(
        self,
    ) -> tuple[dict[TopicPartition, dict[bytes, Change]], list[tuple[Any, str, int]]]:
        """Every owned partition's changed keys as store changes, and the same values in
        closed record batches for its changelog partition: ``(builder, topic, partition)``."""
        assert self._producer is not None
        create_batch = self._producer.create_batch
        changes: dict[TopicPartition, dict[bytes, Change]] = {}
        batches: list[tuple[Any, str, int]] = []
        pacer = Pacer()
        for owned in self.owned.values():
            if not owned.dirty:
                continue
            topic, partition = owned.state_topic, owned.input.partition
            changed = changes[owned.input] = {}
            builder = create_batch()
            append = builder.append
            for index, (key, (value, stored_since)) in enumerate(owned.dirty.items()):
                if not index % YIELD_CHECK:
                    await pacer.tick()
                # An exact-size copy: orjson's bytes keep a 4 KiB buffer, and these are
                # held until the checkpoint lands (20,000 of them: 80 MiB, not 6).
                data = _exact(encode(value))
                changed[key] = _new_change(Change, (data, value.get("p"), stored_since))
                if append(key=key, value=data, timestamp=None) is None:
                    batches.append((_closed(builder), topic, partition))
                    builder = create_batch()
                    append = builder.append
                    append(key=key, value=data, timestamp=None)
            batches.append((_closed(builder), topic, partition))
        return changes, batches

    def _batches(
        self,
        changes: dict[TopicPartition, dict[bytes, Change]],
        writes: list[tuple[OwnedPartition, dict[bytes, Change], Checkpoint]],
    ) -> list[Any]:
        """The changelog record batches of ``changes`` built again (a retry)."""
        assert self._producer is not None
        state_topics = {owned.input: owned.state_topic for owned, _, _ in writes}
        batches = []
        for tp, changed in changes.items():
            topic, partition = state_topics[tp], tp.partition
            builder = self._producer.create_batch()
            for key, change in changed.items():
                if builder.append(key=key, value=change.encoded, timestamp=None) is None:
                    batches.append((_closed(builder), topic, partition))
                    builder = self._producer.create_batch()
                    builder.append(key=key, value=change.encoded, timestamp=None)
            batches.append((_closed(builder), topic, partition))
        return batches

    async def _produce(
        self, batches: list[tuple[Any, str, int]], dead: list[DeadLetter]
    ) -> list[DeadLetter]:
        """Produce and await; returns the dead letters to send again, stripped (the
        broker refused them for good: too large). Retriable errors raise."""
        assert self._producer is not None
        producer = self._producer
        futures = [
            await producer.send_batch(builder, topic, partition=partition)
            for builder, topic, partition in batches
        ]
        # Not streams.kafka.send_dead_letter: these letters ride on the checkpoint's own
        # producer (the projector is outside the Faust app) and are awaited with its values,
        # before the input offsets they come from are committed.
        letters = []
        for letter in dead:
            dlq, value = self.settings.dlq_topic, letter.to_bytes()
            letters.append(await producer.send(dlq, value, key=letter.kafka_key))
        if futures:
            await asyncio.gather(*futures)
        outcomes = await asyncio.gather(*letters, return_exceptions=True)
        again = []
        for letter, outcome in zip(dead, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                continue
            if not dead_letters.refused_for_good(outcome):
                raise outcome
            stripped = dead_letters.stripped(letter, outcome)
            if stripped is None:
                log.error(
                    "dead letter of %s[%s]@%s dropped: the broker refuses even its summary (%s)",
                    letter.topic,
                    letter.partition,
                    letter.offset,
                    outcome,
                )
                continue
            again.append(stripped)
        return again

    async def _commit(self, owned: list[OwnedPartition]) -> None:
        await self._commit_offsets(_offsets(owned))

    async def _commit_offsets(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if not offsets or self._consumer is None:
            return
        try:
            await self._consumer.commit(offsets)
        except (KafkaError, AssertionError) as error:
            # The stores hold the checkpoint; a later commit (or the next owner's
            # replay, deduplicated by version) covers it.
            log.info("projection commit skipped: %s", error)


def _offsets(owned: list[OwnedPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The next offsets of these partitions' inputs and commands, to commit."""
    offsets = {}
    for o in owned:
        offsets[o.input] = OffsetAndMetadata(o.next_input, "")
        offsets[o.commands] = OffsetAndMetadata(o.next_commands, "")
    return offsets

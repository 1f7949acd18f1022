"""The projector's checkpoint: produce every changed value and dead letter and await the
acknowledgements, then write the stores, then commit the input offsets. Part of
:class:`agents.imports.projector.Projector`."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from agents.imports import projection
from agents.imports.owned_partition import OwnedPartition
from agents.imports.slices import YIELD_CHECK, Pacer
from agents.imports.store import Change, Checkpoint
from streams import dead_letters, fault_points
from streams.records import DeadLetter

log = logging.getLogger(__name__)
# Built per changed key per checkpoint: skips NamedTuple's Python-level __new__.
_new_change = tuple.__new__
encode = projection.encode


class CheckpointSteps:
    """The projector's checkpoint (uses its producer, consumer, owned partitions and
    pending dead letters)."""

    async def _checkpoint(self) -> None:
        """Produce the dirty values and dead letters, await every ack, then write the
        stores. Retries until the broker takes them (nothing is committed meanwhile)."""
        assert self._producer is not None
        dead, self._dead = self._dead, []
        changes: dict[TopicPartition, dict[bytes, Change]] = {}
        pacer = Pacer()
        for owned in self.owned.values():
            if not owned.dirty:
                continue
            changed = changes[owned.input] = {}
            encoded = owned.encoded
            for index, (key, (value, stored_since)) in enumerate(owned.dirty.items()):
                if not index % YIELD_CHECK:
                    await pacer.tick()
                data = encoded.get(key) or encode(value)
                changed[key] = _new_change(Change, (data, value.get("p"), stored_since))
        delay = 0.5
        while changes or dead:
            try:
                # Dead letters the broker refuses for good come back stripped (or are
                # dropped): a record's own fault never holds the lock in a retry loop.
                dead = await self._produce(changes, dead)
                if not dead:
                    break
            except KafkaError as error:
                log.warning(
                    "projection checkpoint: produce failed (%s); retrying in %.1fs", error, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if changes:
            fault_points.reached("checkpoint.after_produce")
        for owned in self.owned.values():
            checkpoint = Checkpoint(owned.next_input, owned.next_commands)
            owned.store.write(changes.get(owned.input, {}), checkpoint)
            owned.settle()
        if changes:
            fault_points.reached("checkpoint.after_store")
            self.checkpoints += 1

    async def _produce(
        self, changes: dict[TopicPartition, dict[bytes, Change]], dead: list[DeadLetter]
    ) -> list[DeadLetter]:
        """Produce and await; returns the dead letters to send again, stripped (the
        broker refused them for good: too large). Retriable errors raise."""
        assert self._producer is not None
        producer = self._producer
        futures = []
        for tp, changed in changes.items():
            topic, partition = self.owned[tp].state_topic, tp.partition
            builder = producer.create_batch()
            pacer = Pacer()
            for index, (key, change) in enumerate(changed.items()):
                if not index % YIELD_CHECK:
                    await pacer.tick()
                if builder.append(key=key, value=change.encoded, timestamp=None) is None:
                    futures.append(await producer.send_batch(builder, topic, partition=partition))
                    builder = producer.create_batch()
                    builder.append(key=key, value=change.encoded, timestamp=None)
            if builder.record_count():
                futures.append(await producer.send_batch(builder, topic, partition=partition))
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

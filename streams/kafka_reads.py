"""Reading topics outside any consumer group: a topic up to its end, records at given
offsets, a followed topic mirrored per key, and the dead letters (read and replayed).
Every worker and command reads this way; none of it commits offsets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiokafka import ConsumerRecord, TopicPartition

from streams.kafka import (
    FOLLOWER_FETCH_WAIT_MS,
    consumer,
    partitions_of,
    producer,
    refresh_metadata,
)
from streams.records import DeadLetter
from streams.settings import Settings

log = logging.getLogger(__name__)

REPLAY_HEADER = "norce-sync-replayed-from"
V = TypeVar("V")


async def read_to_end(
    settings: Settings, topic: str, *, partitions: Iterable[int] | None = None
) -> AsyncIterator[ConsumerRecord]:
    """Every record of ``topic`` (of ``partitions``, or all) up to the end offsets seen
    when reading starts; nothing when the topic does not exist."""
    c = consumer(settings)
    await c.start()
    try:
        tps = await partitions_of(c, topic)
        if partitions is not None:
            wanted = set(partitions)
            tps = [tp for tp in tps if tp.partition in wanted]
        if not tps:
            return
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await c.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < end[tp]:
                        yield record
            for tp in list(remaining):
                if await c.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await c.stop()


async def read_at(
    settings: Settings, topic: str, refs: Iterable[tuple[int, int]], *, timeout_s: float = 10.0
) -> dict[tuple[int, int], bytes]:
    """The values of the records at these (partition, offset) refs, with one consumer; a
    ref the topic no longer holds (retention) or that is not read in time is left out."""
    wanted = sorted(set(refs))
    found: dict[tuple[int, int], bytes] = {}
    if not wanted:
        return found
    c = consumer(settings)
    await c.start()
    try:
        tps = {p: TopicPartition(topic, p) for p, _ in wanted}
        c.assign(list(tps.values()))
        for partition, offset in wanted:
            tp = tps[partition]
            c.seek(tp, offset)
            # Each record its own time: under load one slow fetch must not cost the rest.
            deadline = asyncio.get_running_loop().time() + timeout_s
            while asyncio.get_running_loop().time() < deadline:
                batch = await c.getmany(tp, timeout_ms=500, max_records=1)
                records = batch.get(tp, [])
                if records:
                    if records[0].offset == offset and records[0].value is not None:
                        found[(partition, offset)] = records[0].value
                    break  # a later offset: this one is gone (deleted by retention)
                if await c.position(tp) > offset:
                    break
    finally:
        await c.stop()
    return found


@dataclass(frozen=True)
class StoredLetter:
    offset: int
    letter: DeadLetter


async def read_dead_letters(
    settings: Settings,
    *,
    stages: Iterable[str] = (),
    since: float | None = None,
    offsets: Iterable[int] = (),
) -> list[StoredLetter]:
    """Dead letters in topic order, filtered by stage, time and dead-letter offset;
    undecodable records are logged and skipped."""
    wanted_stages, wanted_offsets = set(stages), set(offsets)
    letters = []
    async for record in read_to_end(settings, settings.dlq_topic):
        try:
            letter = DeadLetter.from_bytes(record.value or b"")
        except ValueError as error:
            log.warning("dead letter at offset %d is undecodable: %s", record.offset, error)
            continue
        if wanted_stages and letter.stage not in wanted_stages:
            continue
        if since is not None and letter.time < since:
            continue
        if wanted_offsets and record.offset not in wanted_offsets:
            continue
        letters.append(StoredLetter(record.offset, letter))
    return letters


async def replay(settings: Settings, letters: Iterable[StoredLetter]) -> int:
    """Produce each letter's original key and bytes to its original topic (acks=all);
    the header names the dead letter it came from. Returns how many were sent."""
    sender = producer(settings, acks="all", max_request_size=32 * 1024 * 1024)
    await sender.start()
    try:
        futures = []
        for stored in letters:
            letter = stored.letter
            if letter.topic is None or letter.value is None:
                continue
            origin = f"{settings.dlq_topic}:{stored.offset}".encode()
            futures.append(
                await sender.send(
                    letter.topic,
                    key=letter.key,
                    value=letter.value,
                    headers=[(REPLAY_HEADER, origin)],
                )
            )
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await sender.stop()


class TopicMirror(Generic[V]):
    """The latest decoded value per key of a topic, kept current by :meth:`follow`;
    a tombstone (or a value ``decode`` rejects) removes the key."""

    def __init__(self, topic: str, decode: Callable[[bytes], V]) -> None:
        self.topic = topic
        self.decode = decode
        self.values: dict[bytes, V] = {}
        self.positions: dict[int, int] = {}
        # Set once a fetch came back empty: the mirror had read everything written
        # before that moment.
        self.caught_up = asyncio.Event()

    def apply(self, record: ConsumerRecord) -> None:
        key = record.key or b""
        try:
            value = None if record.value is None else self.decode(record.value)
        except ValueError:
            log.warning("%s@%d: undecodable value skipped", self.topic, record.offset)
            value = None
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value

    async def follow(self, settings: Settings) -> None:
        await follow_topic(
            settings, self.topic, self.apply, self.positions, on_idle=self.caught_up.set
        )


async def follow_topic(
    settings: Settings,
    topic: str,
    handle: Callable[[ConsumerRecord], None],
    positions: dict[int, int],
    on_idle: Callable[[], None] | None = None,
) -> None:
    """Feed every record of ``topic`` to ``handle``, from ``positions`` (partition ->
    next offset; the beginning when absent) onwards, forever; reconnects after errors.
    A plain consumer outside the group: each worker reads all partitions itself."""
    while True:
        # Seeks only before reading: the broker may hold an idle fetch long (no latency:
        # it answers when a record arrives).
        c = consumer(settings, fetch_max_wait_ms=FOLLOWER_FETCH_WAIT_MS)
        try:
            await c.start()
            while not c.partitions_for_topic(topic):
                await asyncio.sleep(1.0)
                await refresh_metadata(c)
            tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
            c.assign(tps)
            for tp in tps:
                if tp.partition in positions:
                    c.seek(tp, positions[tp.partition])
                else:
                    await c.seek_to_beginning(tp)
            while True:
                batch = await c.getmany(timeout_ms=1000, max_records=2000)
                if not batch and on_idle is not None:
                    on_idle()
                for tp, records in batch.items():
                    for record in records:
                        handle(record)
                        positions[tp.partition] = record.offset + 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("following %s failed; retrying", topic, exc_info=True)
            await asyncio.sleep(2.0)
        finally:
            await c.stop()

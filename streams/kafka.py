"""The one Kafka helper module: producing with the broker's acknowledgement (dead letters
included) through the app's producer, and plain aiokafka access for what Faust streams
don't cover: reading one stored record by offset, or a changelog up to a snapshot of its
end offsets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streams.dead_letters import note_dead_letter
from streams.records import DeadLetter
from streams.settings import Settings


async def send_acked(
    app: faust.App,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]] = (),
    *,
    partition: int | None = None,
) -> Any:
    """Produce one record (acks=all, the app's producer setting) and wait for the ack."""
    producer = await app.maybe_start_producer()
    future = await producer.send(topic, key, value, partition, None, list(headers))
    # shield: a caller's timeout must not cancel the producer's own delivery future
    return await asyncio.shield(future)


async def send_dead_letter(app: faust.App, letter: DeadLetter) -> None:
    """Log, count and produce a dead letter; returns once the broker has it."""
    note_dead_letter(letter)
    key = (letter.state_key or "").encode() or None
    await send_acked(app, app.settings.dlq_topic, key, letter.to_bytes())  # type: ignore[attr-defined]


def bootstrap_servers(settings: Settings) -> str:
    """``kafka://a:9092;kafka://b:9092`` -> ``a:9092,b:9092``."""
    urls = [u.strip() for u in settings.broker.replace(",", ";").split(";") if u.strip()]
    return ",".join(u.split("://", 1)[-1] for u in urls)


def consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings),
        enable_auto_commit=False,
        # Large enough for a 10,000-key batch record; small enough that a full import's
        # fetch buffers stay a few MiB.
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )


async def partitions_of(c: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, asking the broker: a new consumer's metadata is empty, and
    an empty answer here would read as an empty topic."""
    partitions = c.partitions_for_topic(topic)
    if not partitions:
        await c._client.force_metadata_update()  # no public API refreshes a topic's metadata
        partitions = c.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]


async def read_record(settings: Settings, topic: str, partition: int, offset: int) -> bytes:
    c = consumer(settings)
    await c.start()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, offset)
        record = await c.getone()
        return record.value or b""
    finally:
        await c.stop()


async def partition_records(
    c: AIOKafkaConsumer, tp: TopicPartition, end: int
) -> AsyncIterator[ConsumerRecord]:
    """Records of one assigned partition from its beginning up to ``end`` (exclusive)."""
    c.assign([tp])
    await c.seek_to_beginning(tp)
    while await c.position(tp) < end:
        batch = await c.getmany(tp, timeout_ms=1000, max_records=5000)
        for record in batch.get(tp, []):
            if record.offset >= end:
                return
            yield record

"""Small aiokafka helpers for tests: create topics, produce, read a topic to its end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import NewTopic

from streams import kafka, topics
from streams.settings import Settings

# The tests' broker is plaintext unless a test passes the settings of a secured one.
PLAINTEXT = Settings(kafka_security_protocol="PLAINTEXT")


async def create_topics(
    servers: str,
    names: Iterable[str],
    partitions: int = 1,
    config: dict[str, str] | None = None,
    *,
    settings: Settings = PLAINTEXT,
) -> None:
    admin = kafka.admin_client(settings, servers=servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(n, num_partitions=partitions, replication_factor=1, topic_configs=config)
                for n in names
            ]
        )
    finally:
        await admin.close()


async def produce(
    servers: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, Any]],
    *,
    raw: bool = False,
    settings: Settings = PLAINTEXT,
    max_request_size: int = 1048576,
) -> None:
    """Send ``(key, value)`` pairs; values are JSON-encoded unless ``raw``."""
    producer = kafka.producer(
        settings, servers=servers, acks="all", linger_ms=5, max_request_size=max_request_size
    )
    await producer.start()
    try:
        futures = []
        for key, value in messages:
            payload = value if raw or value is None else orjson.dumps(value)
            futures.append(await producer.send(topic, key=key, value=payload))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(
    servers: str, topic: str, *, timeout: float = 10.0, settings: Settings = PLAINTEXT
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning to the end offsets seen at the start."""
    consumer = kafka.group_consumer(settings, servers=servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout}s")
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def wait_for_records(
    servers: str, topic: str, count: int, *, timeout: float = 60.0
) -> list[ConsumerRecord]:
    """Poll ``topic`` until it holds at least ``count`` records."""
    deadline = time.monotonic() + timeout
    while True:
        records = await read_all(servers, topic)
        if len(records) >= count:
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: {len(records)} of {count} records after {timeout}s")
        await asyncio.sleep(0.2)


async def group_committed_to_end(settings: Settings, group: str, topic: str) -> bool:
    """Whether ``group`` has committed every partition of ``topic`` up to its end."""
    admin = kafka.admin_client(settings)
    reader = kafka.consumer(settings)
    await admin.start()
    await reader.start()
    try:
        tps = await kafka.partitions_of(reader, topic)
        ends = await reader.end_offsets(tps)
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        return all(tp in offsets and offsets[tp].offset == ends[tp] for tp in tps)
    finally:
        await reader.stop()
        await admin.close()


async def projection_committed_to_end(settings: Settings, topic: str) -> bool:
    """Whether the projection's group has committed every partition of ``topic``."""
    return await group_committed_to_end(settings, topics.projection_group(settings), topic)

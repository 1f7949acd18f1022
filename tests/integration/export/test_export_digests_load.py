"""The events reader on assignment (real broker): a partition's dedupe digests come from
its changelog (the last record of each key wins, a null value forgets the key, other
partitions are not mixed in), and a partition its group never committed resumes where
the Faust agent's group left off."""

from __future__ import annotations

import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from agents.export.reader import EventsReader
from streams.settings import Settings
from tests.support.kafka import create_topics

pytestmark = pytest.mark.asyncio


async def _noop(*_: object) -> None:
    return None


async def test_a_partitions_digests_are_loaded_from_its_changelog(kafka_servers: str) -> None:
    changelog = f"digests-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_servers, [changelog], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_servers, acks="all")
    await producer.start()
    try:
        for partition, key, value in [
            (1, b"sku:A", {"out.search.sku": "a1"}),
            (1, b"sku:B", {"out.search.sku": "b1"}),
            (0, b"sku:C", {"out.search.sku": "c1"}),  # another partition's
            (1, b"sku:A", {"out.search.sku": "a2", "out.marketplace.sku": "m2"}),
            (1, b"sku:B", None),  # forgotten
        ]:
            raw = None if value is None else orjson.dumps(value)
            await producer.send_and_wait(changelog, raw, key=key, partition=partition)
    finally:
        await producer.stop()
    settings = Settings(broker=f"kafka://{kafka_servers}", app_id="digests-load")
    reader = EventsReader(settings, "unused-events", changelog, _noop, _noop)
    reader.digests = {0: await reader._load_digests(0), 1: await reader._load_digests(1)}
    assert set(reader.digests[1]) == {b"sku:A"}
    assert reader.digest(1, b"sku:A") == {"out.search.sku": "a2", "out.marketplace.sku": "m2"}
    assert reader.digest(1, b"sku:B") is None
    assert reader.digest(0, b"sku:C") == {"out.search.sku": "c1"}
    assert reader.digest(1, b"sku:C") is None


async def test_a_partition_new_to_the_group_resumes_where_the_agents_group_left_off(
    kafka_servers: str,
) -> None:
    # Before the reader, a Faust agent in the app's own group read the events topic: an
    # upgrade must not replay (or skip) what it had committed.
    events = f"events-{uuid.uuid4().hex[:8]}"
    app_id = f"app-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_servers, [events], partitions=2)
    tp0, tp1 = TopicPartition(events, 0), TopicPartition(events, 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_servers, acks="all")
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(events, b"e%d" % i, key=b"sku:%d" % i, partition=0)
            await producer.send_and_wait(events, b"e%d" % i, key=b"sku:%d" % i, partition=1)
    finally:
        await producer.stop()
    agent_group = AIOKafkaConsumer(
        bootstrap_servers=kafka_servers, group_id=app_id, enable_auto_commit=False
    )
    await agent_group.start()
    try:
        agent_group.assign([tp0])
        await agent_group.commit({tp0: OffsetAndMetadata(7, "")})  # partition 1: never read
    finally:
        await agent_group.stop()

    settings = Settings(broker=f"kafka://{kafka_servers}", app_id=app_id)
    reader = EventsReader(settings, events, "unused-digests", _noop, _noop)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_servers,
        group_id=reader.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    reader._consumer = consumer
    try:
        consumer.assign([tp0, tp1])
        await reader._resume_from_the_agents_group([tp0, tp1])
        assert await consumer.position(tp0) == 7
        assert await consumer.position(tp1) == 0  # nothing committed anywhere: earliest
        # once this group has committed, its own offset counts
        await consumer.commit({tp0: OffsetAndMetadata(9, "")})
        consumer.seek(tp0, 0)
        await reader._resume_from_the_agents_group([tp0])
        assert await consumer.position(tp0) == 0  # left alone (the consumer would use 9)
    finally:
        await consumer.stop()

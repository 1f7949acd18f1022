"""The events reader loads an assigned partition's dedupe digests from the changelog
(real broker): the last record of each key wins, a null value forgets the key, and
other partitions are not mixed in."""

from __future__ import annotations

import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer

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
    held = await reader._load_digests(1)
    assert held == {b"sku:A": {"out.search.sku": "a2", "out.marketplace.sku": "m2"}}
    assert await reader._load_digests(0) == {b"sku:C": {"out.search.sku": "c1"}}

"""The raw reader of whole partitions (``streams.kafka_fetch``) against a real broker:
every record once, in order, transaction markers left out, and a log whose head was
deleted read from its new start."""

from __future__ import annotations

import uuid

from aiokafka import TopicPartition
from aiokafka.admin import RecordsToDelete

from streams.kafka import admin_client, consumer, producer
from streams.kafka_fetch import RawReader
from tests.support.kafka import PLAINTEXT, create_topics


async def read_all(servers: str, tp: TopicPartition) -> list[tuple[int, bytes | None]]:
    reader = consumer(PLAINTEXT, servers=servers)
    await reader.start()
    try:
        start = (await reader.beginning_offsets([tp]))[tp]
        end = (await reader.end_offsets([tp]))[tp]
        raw = RawReader(reader, {tp: start}, max_partition_bytes=1024)  # many small fetches
        seen: list[tuple[int, bytes | None]] = []
        while raw.positions[tp] < end:
            fetched = await raw.fetch([tp])
            seen += [(r.offset, r.value) for r in fetched.get(tp, ()) if r.offset < end]
        return seen
    finally:
        await reader.stop()


async def test_transactions_markers_are_left_out_and_every_record_comes_once(
    kafka_servers: str,
) -> None:
    # An exactly-once worker writes its changelog in transactions: each commit leaves a
    # control record (an offset of its own) that is no row.
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_servers, [topic], 1)
    sender = producer(PLAINTEXT, servers=kafka_servers, transactional_id=f"t-{topic}")
    await sender.start()
    try:
        for batch in range(5):
            async with sender.transaction():
                for n in range(40):
                    await sender.send(topic, key=b"k", value=f"{batch}-{n}".encode())
    finally:
        await sender.stop()
    seen = await read_all(kafka_servers, TopicPartition(topic, 0))
    assert [v for _, v in seen] == [f"{b}-{n}".encode() for b in range(5) for n in range(40)]
    offsets = [o for o, _ in seen]
    assert offsets == sorted(set(offsets))
    assert max(offsets) > len(offsets) - 1  # the markers took offsets of their own


async def test_a_log_whose_head_was_deleted_is_read_from_its_new_start(
    kafka_servers: str,
) -> None:
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_servers, [topic], 1)
    sender = producer(PLAINTEXT, servers=kafka_servers, linger_ms=50)
    await sender.start()
    try:
        for n in range(100):  # a few large batches: the new start falls inside one
            await sender.send(topic, key=b"k", value=str(n).encode())
        await sender.flush()
    finally:
        await sender.stop()
    tp = TopicPartition(topic, 0)
    admin = admin_client(PLAINTEXT, servers=kafka_servers)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(before_offset=37)})
    finally:
        await admin.close()
    seen = await read_all(kafka_servers, tp)
    assert [o for o, _ in seen] == list(range(37, 100))
    assert [v for _, v in seen] == [str(n).encode() for n in range(37, 100)]

"""One key's newest records in a keyed topic, read backwards from the end of the one
partition the key goes to (Kafka's default partitioner), in bounded chunks: a trace costs
at most ``max_scan`` records per topic, however long the topic. No consumer group."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.ops.export_trace import CHUNK, MAX_SCAN, Scan, Stored, partition_for
from streams.kafka import consumer, partitions_of
from streams.settings import Settings

CHUNK_TIMEOUT_S = 10.0


async def scan_key(
    settings: Settings,
    topic: str,
    key: bytes,
    *,
    want: int = 1,
    max_scan: int = MAX_SCAN,
    chunk: int = CHUNK,
) -> Scan | None:
    """Up to ``want`` records of ``key``, newest first; None when the topic does not
    exist."""
    c = consumer(settings)
    await c.start()
    try:
        tps = await partitions_of(c, topic)
        if not tps:
            return None
        tp = TopicPartition(topic, partition_for(key, len(tps)))
        c.assign([tp])
        begin = (await c.beginning_offsets([tp]))[tp]
        end = (await c.end_offsets([tp]))[tp]
        found: list[Stored] = []
        scanned, upto = 0, end
        while upto > begin and len(found) < want and scanned < max_scan:
            start = max(begin, upto - chunk, upto - (max_scan - scanned))
            hits, read = await _read_range(c, tp, start, upto, key)
            found.extend(reversed(hits))
            scanned += read if read else upto - start
            upto = start
        return Scan(topic, tp.partition, found[:want], scanned, complete=upto <= begin)
    finally:
        await c.stop()


async def _read_range(
    c: AIOKafkaConsumer, tp: TopicPartition, start: int, stop: int, key: bytes
) -> tuple[list[Stored], int]:
    """The records of ``key`` in offsets [start, stop), oldest first, and how many
    records were read (a compacted topic has gaps)."""
    c.seek(tp, start)
    hits: list[Stored] = []
    read = 0
    deadline = asyncio.get_running_loop().time() + CHUNK_TIMEOUT_S
    while await c.position(tp) < stop and asyncio.get_running_loop().time() < deadline:
        batch = await c.getmany(tp, timeout_ms=500, max_records=CHUNK)
        for record in batch.get(tp, []):
            if record.offset >= stop:
                return hits, read
            read += 1
            if record.key == key:
                headers = [(k, bytes(v)) for k, v in (record.headers or ())]
                hits.append(Stored(record.offset, record.timestamp, record.value, headers))
    return hits, read

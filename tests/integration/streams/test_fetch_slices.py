"""Bulk readers take their batch in slices with the event loop running between them
(``streams.pacing.getmany_sliced``, used by the import projection), so an order answer
in flight is not held behind one long decode of thousands of records; the batch itself
is unchanged: in offset order per partition, nothing skipped or doubled."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from aiokafka import TopicPartition

from streams import kafka
from streams.pacing import getmany_sliced
from tests.support.kafka import PLAINTEXT, create_topics, produce

pytestmark = pytest.mark.integration

RECORDS = 2400
SLICE = 300


async def test_a_batch_is_decoded_in_slices_with_the_loop_running_between(
    kafka_servers: str, unique: str
) -> None:
    topic = f"slices-{unique}"
    await create_topics(kafka_servers, [topic], partitions=2)
    await produce(kafka_servers, topic, [(f"k{n}".encode(), {"n": n}) for n in range(RECORDS)])
    consumer = kafka.consumer(PLAINTEXT, servers=kafka_servers)
    await consumer.start()
    ticks = 0

    async def ticker() -> None:  # counts turns of the event loop
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    asks: list[tuple[int, int]] = []  # (max_records asked, loop turns before the call)
    getmany = consumer.getmany

    async def spy(*args: Any, **kwargs: Any) -> Any:
        asks.append((kwargs["max_records"], ticks))
        return await getmany(*args, **kwargs)

    consumer.getmany = spy  # type: ignore[method-assign]
    beat = asyncio.create_task(ticker())
    try:
        tps = [TopicPartition(topic, p) for p in (0, 1)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: dict[int, list[int]] = {0: [], 1: []}
        sliced = 0  # batches taken in more than one slice
        while sum(len(v) for v in seen.values()) < RECORDS:
            asks.clear()
            batch = await getmany_sliced(
                consumer, timeout_ms=5000, max_records=1000, slice_records=SLICE
            )
            assert sum(len(r) for r in batch.values()) <= 1000
            assert all(asked <= SLICE for asked, _ in asks)  # never one long decode
            # the loop turned between one slice and the next
            assert all(b[1] > a[1] for a, b in itertools.pairwise(asks))
            sliced += len(asks) > 1
            for tp, records in batch.items():
                seen[tp.partition] += [r.offset for r in records]
    finally:
        beat.cancel()
        await consumer.stop()
    for offsets in seen.values():  # each partition whole, in order, once
        assert offsets == list(range(len(offsets)))
    assert sum(len(v) for v in seen.values()) == RECORDS
    assert sliced  # the fetched records made batches larger than one slice

"""Bulk work that shares the event loop with answers someone waits for (the order
receiver, webhook intake) takes its input in slices, with a yield to the loop between.

``getmany_sliced`` is ``consumer.getmany(max_records=N)`` without its one long
synchronous step: aiokafka decodes every record it returns in one go (5,000 records, a
projection batch, held the loop 10-30 ms, and several times that on a busy host, so every
order answer in flight waited). Here the records come ``slice_records`` at a time, the
first call waiting up to ``timeout_ms`` as before, the rest taking only what is already
fetched; between slices the loop runs (a little longer while urgent work is in flight,
``streams.priority``). The batch is the same: per partition in offset order, at most
``max_records`` records.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from streams.priority import urgent_in_flight

SLICE_RECORDS = 500
# The pause between slices while an urgent request is in flight: its next step (a
# broker answer, the HTTP write) gets the loop before the next slice.
URGENT_WAIT_S = 0.002


async def getmany_sliced(
    consumer: Any, *, timeout_ms: int, max_records: int, slice_records: int = SLICE_RECORDS
) -> dict[TopicPartition, list[ConsumerRecord]]:
    batch: dict[TopicPartition, list[ConsumerRecord]] = await consumer.getmany(
        timeout_ms=timeout_ms, max_records=min(slice_records, max_records)
    )
    taken = sum(len(records) for records in batch.values())
    while batch and taken < max_records:
        await asyncio.sleep(URGENT_WAIT_S if urgent_in_flight() else 0)
        wanted = min(slice_records, max_records - taken)
        more = await consumer.getmany(timeout_ms=0, max_records=wanted)
        if not more:
            break
        for tp, records in more.items():
            batch.setdefault(tp, []).extend(records)
            taken += len(records)
    return batch

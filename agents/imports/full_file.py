"""The rows of a full import, read from the state table's changelog.

A snapshot of the changelog's end offsets fixes what the file holds. Each partition is
read twice: first for each key's last offset (its current value), then to stream exactly
those records. Memory holds one partition's keys, never the rows; the rows go straight
into the POST body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka import partition_records, partitions_of

Progress = Callable[[int], Awaitable[None]]


async def latest_offsets(
    reader: AIOKafkaConsumer, tp: TopicPartition, end: int, prefix: bytes
) -> dict[bytes, int]:
    """Each key's last offset in one changelog partition, for keys under ``prefix``."""
    last: dict[bytes, int] = {}
    async for record in partition_records(reader, tp, end):
        if record.key is not None and record.key.startswith(prefix):
            if record.value is None:
                last.pop(record.key, None)
            else:
                last[record.key] = record.offset
    return last


class StateSnapshot:
    """The current rows under ``prefix`` as of :meth:`open`; :meth:`rows` can be
    iterated more than once (a retried POST streams the same snapshot again)."""

    def __init__(self, reader: AIOKafkaConsumer, topic: str, prefix: bytes) -> None:
        self.reader = reader
        self.topic = topic
        self.prefix = prefix
        self.ends: dict[TopicPartition, int] = {}

    async def open(self) -> int:
        """Fix the end offsets and count the rows (a first pass, for progress)."""
        tps = await partitions_of(self.reader, self.topic)
        self.ends = await self.reader.end_offsets(tps) if tps else {}
        total = 0
        for tp, end in self.ends.items():
            total += len(await latest_offsets(self.reader, tp, end, self.prefix))
        return total

    async def rows(
        self, progress: Progress | None = None, every: int = 10_000
    ) -> AsyncIterator[dict[str, Any]]:
        streamed = 0
        for tp, end in sorted(self.ends.items()):
            last = await latest_offsets(self.reader, tp, end, self.prefix)
            async for record in partition_records(self.reader, tp, end):
                if record.key is not None and last.get(record.key) == record.offset:
                    yield orjson.loads(record.value)["row"]
                    streamed += 1
                    if progress is not None and streamed % every == 0:
                        await progress(streamed)

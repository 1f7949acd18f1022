"""The rows of a full import, read from the state table's changelog.

A snapshot of the changelog's end offsets fixes what the file holds. :meth:`open` reads
each partition once, one at a time, for each key's last offset (its current value) and
keeps only those offsets, sorted, 8 bytes each (1,000,000 keys: 8 MB, not a dict of
keys; by key count, not by the offset range: a compacted changelog's offsets keep
growing for years while its keys do not). :meth:`rows` then reads every partition once
more, all of them at once (one fetch serves eight partitions), and streams the records
at those offsets. Memory holds one partition's keys during :meth:`open`, never the rows;
the rows go straight into the POST body. Two passes over the changelog, not three (the
count used to be a pass of its own, and each partition's last offsets were found again
before streaming it).
"""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka import partition_records, partitions_of

Progress = Callable[[int], Awaitable[None]]
# Options of the reader a snapshot is given (``streams.kafka.consumer(settings,
# **READER_OPTIONS)``): the streaming pass fetches every partition at once, so each
# partition's fetch is kept to 2 MiB (a state value is at most 900 KiB, and a larger
# record still comes whole). With the consumer's 16 MiB a 1,000,000-key import peaked at
# ~240 MiB instead of ~120 MiB, no faster (bench/RESULTS.md, issue 24).
READER_OPTIONS: dict[str, Any] = {"max_partition_fetch_bytes": 2 * 1024 * 1024}
# Records per getmany of the streaming pass (over all partitions).
FETCH_RECORDS = 10_000


async def latest_offsets(
    reader: AIOKafkaConsumer, tp: TopicPartition, end: int, prefix: bytes
) -> dict[bytes, int]:
    """Each key's last offset in one changelog partition, for keys under ``prefix``."""
    last: dict[bytes, int] = {}
    async for record in partition_records(reader, tp, end):
        key = record.key
        if key is not None and key.startswith(prefix):
            if record.value is None:
                last.pop(key, None)
            else:
                last[key] = record.offset
    return last


def current_offsets(last: dict[bytes, int]) -> array[int]:
    """The offsets of a partition's current records, ascending (the order they are read)."""
    return array("q", sorted(last.values()))


class StateSnapshot:
    """The current rows under ``prefix`` as of :meth:`open`; :meth:`rows` can be
    iterated more than once (a retried POST streams the same snapshot again)."""

    def __init__(self, reader: AIOKafkaConsumer, topic: str, prefix: bytes) -> None:
        self.reader = reader
        self.topic = topic
        self.prefix = prefix
        self.ends: dict[TopicPartition, int] = {}
        self.current: dict[TopicPartition, array[int]] = {}

    async def open(self) -> int:
        """Fix the end offsets and find each key's current record; returns the rows."""
        tps = await partitions_of(self.reader, self.topic)
        self.ends = await self.reader.end_offsets(tps) if tps else {}
        self.current = {}
        for tp, end in sorted(self.ends.items()):
            last = await latest_offsets(self.reader, tp, end, self.prefix)
            self.current[tp] = current_offsets(last)
            del last  # one partition's keys at a time
        return sum(len(offsets) for offsets in self.current.values())

    async def rows(
        self, progress: Progress | None = None, every: int = 10_000
    ) -> AsyncIterator[dict[str, Any]]:
        """The snapshot's rows, every partition read at once (in no particular order
        across partitions: each key is in the file once, so the order does not matter)."""
        reader = self.reader
        todo = {tp: end for tp, end in self.ends.items() if self.current[tp]}
        if not todo:
            return
        reader.assign(list(todo))
        await reader.seek_to_beginning(*todo)
        # Per partition, the index of the next current offset to meet: records come in
        # offset order, so each record costs one comparison.
        nexts = dict.fromkeys(todo, 0)
        streamed = 0
        loads = orjson.loads
        while todo:
            fetched = await reader.getmany(*todo, timeout_ms=1000, max_records=FETCH_RECORDS)
            for tp, records in fetched.items():
                end = todo.get(tp)
                if end is None:
                    continue
                offsets = self.current[tp]
                count = len(offsets)
                at = nexts[tp]
                for record in records:
                    offset = record.offset
                    if offset >= end or at == count:
                        break
                    # A current record compacted away since open() (a newer one past the
                    # snapshot replaced it) is passed by: its key is not in this file.
                    while at < count and offsets[at] < offset:
                        at += 1
                    if at < count and offsets[at] == offset:
                        at += 1
                        yield loads(record.value)["row"]
                        streamed += 1
                        if progress is not None and streamed % every == 0:
                            await progress(streamed)
                nexts[tp] = at
            for tp in list(todo):
                if nexts[tp] == len(self.current[tp]) or await reader.position(tp) >= todo[tp]:
                    del todo[tp]
                    reader.pause(tp)

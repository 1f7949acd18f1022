"""The rows of a full import, read from the state table's changelog.

A snapshot of the changelog's end offsets fixes what the file holds. :meth:`open` reads
each partition once, one at a time, for each key's last offset (its current value) and
keeps only those offsets, as one bit per changelog offset (``Winners``: 1,000,000 keys
cost ~140 KB, not a dict of keys). :meth:`rows` then reads every partition once more, all
of them at once (one fetch serves eight partitions), and streams the records whose bit is
set. Memory holds one partition's keys during :meth:`open`, never the rows; the rows go
straight into the POST body. Two passes over the changelog, not three (the count used to
be a pass of its own, and each partition's last offsets were found again before
streaming it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
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


class Winners:
    """The offsets of one partition's current records: a bit per offset from ``base`` (the
    partition's first offset) to its snapshot end."""

    __slots__ = ("base", "bits", "count")

    def __init__(self, base: int, end: int, offsets: Iterable[int]) -> None:
        self.base = base
        self.bits = bytearray((max(end - base, 0) + 7) // 8)
        self.count = 0
        bits = self.bits
        for offset in offsets:
            i = offset - base
            bits[i >> 3] |= 1 << (i & 7)
            self.count += 1

    def __contains__(self, offset: int) -> bool:
        i = offset - self.base
        return i >= 0 and (i >> 3) < len(self.bits) and bool(self.bits[i >> 3] & (1 << (i & 7)))


class StateSnapshot:
    """The current rows under ``prefix`` as of :meth:`open`; :meth:`rows` can be
    iterated more than once (a retried POST streams the same snapshot again)."""

    def __init__(self, reader: AIOKafkaConsumer, topic: str, prefix: bytes) -> None:
        self.reader = reader
        self.topic = topic
        self.prefix = prefix
        self.ends: dict[TopicPartition, int] = {}
        self.winners: dict[TopicPartition, Winners] = {}

    async def open(self) -> int:
        """Fix the end offsets and find each key's current record; returns the rows."""
        tps = await partitions_of(self.reader, self.topic)
        self.ends = await self.reader.end_offsets(tps) if tps else {}
        starts = await self.reader.beginning_offsets(tps) if tps else {}
        self.winners = {}
        for tp, end in sorted(self.ends.items()):
            last = await latest_offsets(self.reader, tp, end, self.prefix)
            # Records read are at or after the log start asked before (it only moves on).
            self.winners[tp] = Winners(starts.get(tp, 0), end, last.values())
            del last  # one partition's keys at a time
        return sum(w.count for w in self.winners.values())

    async def rows(
        self, progress: Progress | None = None, every: int = 10_000
    ) -> AsyncIterator[dict[str, Any]]:
        """The snapshot's rows, every partition read at once (in no particular order
        across partitions: each key is in the file once, so the order does not matter)."""
        reader = self.reader
        todo = {tp: end for tp, end in self.ends.items() if self.winners[tp].count}
        if not todo:
            return
        reader.assign(list(todo))
        await reader.seek_to_beginning(*todo)
        streamed = 0
        loads = orjson.loads
        while todo:
            fetched = await reader.getmany(*todo, timeout_ms=1000, max_records=FETCH_RECORDS)
            for tp, records in fetched.items():
                end = todo.get(tp)
                if end is None:
                    continue
                winners = self.winners[tp]
                base, bits = winners.base, winners.bits
                for record in records:
                    offset = record.offset
                    if offset >= end:
                        break
                    i = offset - base  # Winners.__contains__, inlined: once per record
                    if i >= 0 and bits[i >> 3] >> (i & 7) & 1:
                        yield loads(record.value)["row"]
                        streamed += 1
                        if progress is not None and streamed % every == 0:
                            await progress(streamed)
            for tp in list(todo):
                if await reader.position(tp) >= todo[tp]:
                    del todo[tp]
                    reader.pause(tp)

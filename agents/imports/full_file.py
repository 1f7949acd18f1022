"""The rows of a full import, read from the state table's changelog.

A snapshot of the changelog's end offsets fixes what the file holds. :meth:`open` reads
each partition once, one at a time, for each key's last offset (its current value) and
keeps only those offsets, sorted, 8 bytes each (1,000,000 keys: 8 MB, not a dict of
keys; by key count, not by the offset range: a compacted changelog's offsets keep
growing for years while its keys do not). :meth:`chunks` then reads every partition once
more, all of them at once (one fetch serves eight partitions), and hands out the rows at
those offsets a fetch at a time. Memory holds one partition's keys during :meth:`open`,
never the rows; the rows go straight into the POST body. Both passes read raw record
batches (``streams.kafka_fetch``): no ``ConsumerRecord`` per record, and a fetch is
asked for before the last one's records are gone through, so the broker works meanwhile.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka import partitions_of
from streams.kafka_fetch import RawReader

Progress = Callable[[int], Awaitable[None]]
# Options of the reader a snapshot is given (``streams.kafka.consumer(settings,
# **READER_OPTIONS)``); the streaming pass fetches every partition at once, 1 MiB of each
# (a state value is at most 900 KiB, and a larger record still comes whole). With raw
# batches and the next fetch in flight, 2 MiB peaked ~20 MiB higher for no less CPU; the
# consumer's 16 MiB once peaked at ~240 MiB (bench/RESULTS.md, issue 24).
READER_OPTIONS: dict[str, Any] = {"max_partition_fetch_bytes": 1 * 1024 * 1024}
# Bytes per fetch of the count pass (one partition at a time; its records are only keys
# and offsets once gone through).
COUNT_FETCH_BYTES = 4 * 1024 * 1024


async def _fetches(
    reader: RawReader, tps: list[TopicPartition], ends: dict[TopicPartition, int]
) -> AsyncIterator[dict[TopicPartition, Iterator[Any]]]:
    """Fetches of ``tps`` until each is read to its end; the next fetch is already under
    way while the caller goes through the last one's records."""
    todo = [tp for tp in tps if reader.positions[tp] < ends[tp]]
    pending = asyncio.ensure_future(reader.fetch(todo)) if todo else None
    try:
        while pending is not None:
            fetched = await pending
            todo = [tp for tp in todo if reader.positions[tp] < ends[tp]]
            pending = asyncio.ensure_future(reader.fetch(todo)) if todo else None
            yield fetched
    finally:
        if pending is not None:
            pending.cancel()


async def latest_offsets(
    reader: AIOKafkaConsumer, tp: TopicPartition, end: int, prefix: bytes
) -> dict[bytes, int]:
    """Each key's last offset in one changelog partition, for keys under ``prefix``."""
    start = (await reader.beginning_offsets([tp]))[tp]
    raw = RawReader(reader, {tp: start}, max_partition_bytes=COUNT_FETCH_BYTES)
    return await _latest(raw, tp, end, prefix)


async def _latest(raw: RawReader, tp: TopicPartition, end: int, prefix: bytes) -> dict[bytes, int]:
    last: dict[bytes, int] = {}
    pop = last.pop
    async for fetched in _fetches(raw, [tp], {tp: end}):
        for record in fetched.get(tp, ()):
            offset = record.offset
            if offset >= end:
                break
            key = record.key
            if key is not None and key.startswith(prefix):
                if record.value is None:
                    pop(key, None)
                else:
                    last[key] = offset
    return last


def current_offsets(last: dict[bytes, int]) -> array[int]:
    """The offsets of a partition's current records, ascending (the order they are read)."""
    return array("q", sorted(last.values()))


class StateSnapshot:
    """The current rows under ``prefix`` as of :meth:`open`; :meth:`chunks` (and
    :meth:`rows`) can be iterated more than once (a retried POST streams the same
    snapshot again)."""

    def __init__(self, reader: AIOKafkaConsumer, topic: str, prefix: bytes) -> None:
        self.reader = reader
        self.topic = topic
        self.prefix = prefix
        self.starts: dict[TopicPartition, int] = {}
        self.ends: dict[TopicPartition, int] = {}
        self.current: dict[TopicPartition, array[int]] = {}
        self.offsets_read = 0  # over both passes and every retry (tests count passes)

    async def open(self) -> int:
        """Fix the end offsets and find each key's current record; returns the rows."""
        tps = await partitions_of(self.reader, self.topic)
        self.ends = await self.reader.end_offsets(tps) if tps else {}
        self.starts = await self.reader.beginning_offsets(tps) if tps else {}
        self.current = {}
        for tp, end in sorted(self.ends.items()):
            raw = RawReader(
                self.reader, {tp: self.starts[tp]}, max_partition_bytes=COUNT_FETCH_BYTES
            )
            last = await _latest(raw, tp, end, self.prefix)
            self.offsets_read += raw.offsets_read
            self.current[tp] = current_offsets(last)
            del last  # one partition's keys at a time
        return sum(len(offsets) for offsets in self.current.values())

    async def rows(
        self, progress: Progress | None = None, every: int = 10_000
    ) -> AsyncIterator[dict[str, Any]]:
        """The snapshot's rows one by one (see :meth:`chunks`)."""
        async for chunk in self.chunks(progress, every):
            for row in chunk:
                yield row

    async def chunks(
        self, progress: Progress | None = None, every: int = 10_000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The snapshot's rows, a list per partition per fetch, every partition read at
        once (in no particular order across partitions: each key is in the file once,
        so the order does not matter). ``progress`` hears the rows so far each time
        another ``every`` have gone out."""
        todo = {tp: end for tp, end in self.ends.items() if self.current[tp]}
        if not todo:
            return
        max_bytes = READER_OPTIONS["max_partition_fetch_bytes"]
        raw = RawReader(
            self.reader, {tp: self.starts[tp] for tp in todo}, max_partition_bytes=max_bytes
        )
        # Per partition, the index of the next current offset to meet: records come in
        # offset order, so each record costs one comparison.
        nexts = dict.fromkeys(todo, 0)
        streamed = 0
        reported = 0
        loads = orjson.loads
        try:
            async for fetched in _fetches(raw, sorted(todo), todo):
                for tp, records in fetched.items():
                    end = todo[tp]
                    offsets = self.current[tp]
                    count = len(offsets)
                    at = nexts[tp]
                    chunk: list[dict[str, Any]] = []
                    for record in records:
                        offset = record.offset
                        if offset >= end or at == count:
                            break
                        # A current record compacted away since open() (a newer one past
                        # the snapshot replaced it) is passed by: its key is not in this
                        # file.
                        while at < count and offsets[at] < offset:
                            at += 1
                        if at < count and offsets[at] == offset:
                            at += 1
                            chunk.append(loads(record.value)["row"])
                    nexts[tp] = at
                    if at == count:
                        raw.positions[tp] = end  # every current row is out: read no further
                    if chunk:
                        streamed += len(chunk)
                        yield chunk
                        if progress is not None and streamed - reported >= every:
                            reported = streamed - streamed % every
                            await progress(streamed)
        finally:
            self.offsets_read += raw.offsets_read

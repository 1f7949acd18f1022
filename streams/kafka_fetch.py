"""Reading whole partitions without a Python object per record (a full import's passes).

aiokafka's consumer turns every record into a ``ConsumerRecord`` (a dataclass built in
Python, ~1 us each): a full import of 1,000,000 keys reads ~2,200,000 records, and that
alone was a quarter of its CPU. :class:`RawReader` sends the fetch requests itself, over
the connections of a started consumer (the same client, so the same security settings),
and hands out aiokafka's compiled record objects as they come out of each batch: each
has ``.offset``, ``.key`` and ``.value``, nothing is copied or wrapped. What it keeps of
the consumer's behaviour (read_uncommitted, its default): CRCs are checked, control
batches are left out, records before the asked position are skipped (a batch starts
before it), and the position moves past a batch even when compaction emptied its end.
No group, no commits, no offsets stored: a reader of a topic up to a given end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as Errors
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from streams import kafka

log = logging.getLogger(__name__)

# How long the broker may hold a fetch that has no data yet (we only ask below the end).
MAX_WAIT_MS = 100
RETRY_BACKOFF_S = 0.2
# Errors a metadata refresh and another try cure (a leader moved, a topic being created).
_REFRESH = (
    Errors.NotLeaderForPartitionError,
    Errors.UnknownTopicOrPartitionError,
    Errors.LeaderNotAvailableError,
)


class RawReader:
    """Fetches ``positions`` (partition -> next offset) forward, all partitions of one
    leader in one request. The caller reads to the ends it fixed before (offsets below a
    partition's end offset are all there to read, bar those compaction removed)."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        positions: dict[TopicPartition, int],
        *,
        max_partition_bytes: int,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._consumer = consumer
        self._client = kafka.consumer_client(consumer)
        self.positions = dict(positions)
        # Offsets the batches handed out span (their records, bar those compacted away):
        # the tests count passes by it.
        self.offsets_read = 0
        self._partition_bytes = max_partition_bytes
        self._max_bytes = max_bytes

    async def fetch(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, Iterator[Any]]:
        """One fetch of ``tps`` from their positions: each partition's records (possibly
        none), its position moved past them. A broker error that a metadata refresh
        cures is waited out here; any other is raised."""
        by_node: dict[int, list[TopicPartition]] = {}
        missing = False
        for tp in tps:
            node = self._client.cluster.leader_for_partition(tp)
            if node is None or node == -1:
                missing = True
            else:
                by_node.setdefault(node, []).append(tp)
        if missing:
            await self._refresh()
        answers = await asyncio.gather(
            *(self._fetch_node(node, parts) for node, parts in by_node.items())
        )
        out: dict[TopicPartition, Iterator[Any]] = {}
        for answer in answers:
            out.update(answer)
        return out

    async def _refresh(self) -> None:
        await asyncio.sleep(RETRY_BACKOFF_S)
        await self._client.force_metadata_update()

    async def _fetch_node(
        self, node: int, tps: list[TopicPartition]
    ) -> dict[TopicPartition, Iterator[Any]]:
        topics: dict[str, list[tuple[int, int, int]]] = {}
        for tp in tps:
            topics.setdefault(tp.topic, []).append(
                (tp.partition, self.positions[tp], self._partition_bytes)
            )
        request = FetchRequest(
            MAX_WAIT_MS,
            1,
            self._max_bytes,
            0,
            list(topics.items()),  # 0: read_uncommitted
        )
        response = await self._client.send(node, request)
        out: dict[TopicPartition, Iterator[Any]] = {}
        refresh = False
        for topic, partitions in response.topics:
            for partition, error_code, _highwater, *data in partitions:
                tp = TopicPartition(topic, partition)
                error = Errors.for_code(error_code)
                if error is Errors.NoError:
                    out[tp] = self._records(tp, MemoryRecords(data[-1]))
                elif error in _REFRESH:
                    refresh = True
                elif error is Errors.OffsetOutOfRangeError:
                    # Below the log's start (retention removed the head): go on from there.
                    start = (await self._consumer.beginning_offsets([tp]))[tp]
                    if start <= self.positions[tp]:
                        raise error(f"{tp} offset {self.positions[tp]} is out of range")
                    log.info("%s: offset %d is gone; reading from %d", tp,
                             self.positions[tp], start)  # fmt: skip
                    self.positions[tp] = start
                else:
                    raise error(f"fetching {tp} at {self.positions[tp]}")
        if refresh:
            await self._refresh()
        return out

    def _records(self, tp: TopicPartition, records: MemoryRecords) -> Iterator[Any]:
        """The records of a fetch (every CRC checked first), made one at a time as they
        are gone through: a list of 100,000 record objects cost ten times their making
        (the garbage collector walks them again and again)."""
        position = self.positions[tp]
        if not records.has_next() and records.size_in_bytes() > 0:
            # Brokers of 0.10.1 and later always return a first batch larger than the
            # limits, so this is an older broker and a larger record than asked for.
            raise Errors.RecordTooLargeError(
                f"{tp}: a record at {position} is larger than {self._partition_bytes} bytes"
            )
        batches = []
        end = position
        while records.has_next():
            batch = records.next_batch()
            if not batch.validate_crc():
                raise Errors.CorruptRecordException(f"Invalid CRC - {tp}")
            # The batch's last offset survives compaction: the next fetch starts after it.
            end = max(end, batch.next_offset)
            if not batch.is_control_batch and batch.next_offset > position:
                batches.append(batch)
                self.offsets_read += batch.next_offset - max(batch.base_offset, position)
        self.positions[tp] = end
        if batches and batches[0].base_offset < position:  # the fetch began inside it
            first = batches[0]
            batches[0] = (r for r in first if r.offset >= position)  # type: ignore[call-overload]
        return chain.from_iterable(batches)

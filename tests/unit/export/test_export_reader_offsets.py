"""The events reader's bookkeeping (agents.export.reader): the committed offset never
passes an event whose records are not acknowledged, and the dedupe digests held per
partition are bounded; a revoked partition is drained, then committed."""

from __future__ import annotations

import random

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from agents.export.reader import EventsReader, PartitionOffsets
from streams.settings import Settings


async def _noop(*_: object) -> None:
    return None


def test_nothing_is_committable_before_the_first_ack() -> None:
    offsets = PartitionOffsets()
    for offset in (10, 11, 12):
        offsets.read(offset)
    assert offsets.committable is None
    assert offsets.outstanding == 3


def test_a_later_ack_waits_for_the_earlier_ones() -> None:
    offsets = PartitionOffsets()
    for offset in (10, 11, 12, 13):
        offsets.read(offset)
    offsets.ack(12)  # another entity's window finished first
    offsets.ack(13)
    assert offsets.committable is None
    offsets.ack(10)
    assert offsets.committable == 11
    offsets.ack(11)
    assert offsets.committable == 14
    assert offsets.outstanding == 0


def test_gaps_in_offsets_compacted_or_transaction_markers_are_skipped() -> None:
    offsets = PartitionOffsets()
    for offset in (3, 7, 8):
        offsets.read(offset)
    offsets.ack(7)
    offsets.ack(3)
    assert offsets.committable == 8
    offsets.ack(8)
    assert offsets.committable == 9


def test_in_any_order_the_committable_offset_is_one_past_the_acked_prefix() -> None:
    rng = random.Random(7)
    offsets = PartitionOffsets()
    read = list(range(100, 1100))
    for offset in read:
        offsets.read(offset)
    order = read[:]
    rng.shuffle(order)
    acked: set[int] = set()
    for offset in order:
        offsets.ack(offset)
        acked.add(offset)
        prefix = 0
        while prefix < len(read) and read[prefix] in acked:
            prefix += 1
        expected = read[prefix - 1] + 1 if prefix else None
        assert offsets.committable == expected
    assert offsets.outstanding == 0


def test_digests_held_are_bounded_per_partition_newest_written_kept() -> None:
    settings = Settings(export_digests_per_partition=2)
    reader = EventsReader(settings, "events", "digests", _noop, _noop)
    reader.digests = {0: {}, 1: {}}
    for key in (b"sku:A", b"sku:B", b"sku:C"):
        reader.remember(0, key, orjson.dumps({"out.search.sku": key.decode()}))
    assert reader.digest(0, b"sku:A") is None  # the least recently written went
    assert reader.digest(0, b"sku:C") == {"out.search.sku": "sku:C"}
    reader.remember(0, b"sku:B", orjson.dumps({"out.search.sku": "again"}))  # now newest
    reader.remember(0, b"sku:D", orjson.dumps({"out.search.sku": "sku:D"}))
    assert set(reader.digests[0]) == {b"sku:B", b"sku:D"}
    assert reader.digests[1] == {}  # partitions are held apart
    reader.digests.pop(1)
    reader.remember(1, b"sku:E", b"{}")  # revoked meanwhile: nothing is kept
    assert 1 not in reader.digests


def test_a_held_digest_is_an_exact_size_copy_not_orjsons_write_buffer() -> None:
    # orjson.dumps returns bytes that keep its write buffer (~4 KiB) allocated: holding
    # 100,000 of them cost 400 MiB in the burst benchmark.
    reader = EventsReader(Settings(), "events", "digests", _noop, _noop)
    reader.digests = {0: {}}
    encoded = orjson.dumps({"out.search.sku": "0123456789abcdef"})
    reader.remember(0, b"sku:A", encoded)
    held = reader.digests[0][b"sku:A"]
    assert held == encoded
    assert held is not encoded


class _Consumer:
    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})


async def test_a_revoked_partition_is_drained_then_committed_up_to_its_first_unacked() -> None:
    offsets = PartitionOffsets()
    for offset in range(10, 15):
        offsets.read(offset)
    offsets.ack(10)
    offsets.ack(11)
    offsets.ack(13)
    order: list[str] = []

    async def drain() -> None:  # the held windows flush: 12 is acknowledged meanwhile
        order.append("drain")
        offsets.ack(12)

    reader = EventsReader(Settings(), "events", "digests", _noop, drain)
    consumer = _Consumer()
    reader._consumer = consumer  # type: ignore[assignment]
    reader.offsets = {0: offsets, 1: PartitionOffsets()}
    reader.digests = {0: {b"sku:A": b"{}"}, 1: {}}
    await reader.release([TopicPartition("events", 0), TopicPartition("other", 1)])
    assert order == ["drain"]
    # 14 was never acknowledged: committed up to it, the next owner reads it again
    assert consumer.commits == [{TopicPartition("events", 0): 14}]
    assert set(reader.offsets) == {1} and set(reader.digests) == {1}
    offsets.ack(14)  # a late acknowledgement of a revoked partition changes nothing
    assert set(reader.offsets) == {1}

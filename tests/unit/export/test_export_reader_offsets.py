"""The events reader's offset tracking (agents.export.reader.PartitionOffsets): the
committed offset never passes an event whose records are not acknowledged."""

from __future__ import annotations

import random

from agents.export.reader import PartitionOffsets


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

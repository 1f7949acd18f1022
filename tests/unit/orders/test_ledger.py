"""The receivers' ledger without a broker: what counts as known, and the first version
of a ref standing."""

from __future__ import annotations

from collections import OrderedDict

from aiokafka.partitioner import DefaultPartitioner

from agents.orders.ledger import Entry, RefLedger
from streams.settings import Settings


def ledger(limit: int = 10) -> RefLedger:
    held = RefLedger(Settings(orders_ledger_per_partition=limit), "t")
    held.refs = {0: OrderedDict(), 1: OrderedDict()}
    held.position = {0: 5, 1: 0}
    return held


def test_offsets_below_the_tail_or_written_here_are_known() -> None:
    held = ledger()
    assert held._known_up_to(0, 5)
    assert not held._known_up_to(0, 7)  # 5 and 6: written by someone, not read yet
    held.note(0, "A", "d1", 5)
    assert not held._known_up_to(0, 7)
    held.note(0, "B", "d2", 6)
    assert held._known_up_to(0, 7)  # both are this worker's own writes


def test_the_first_version_of_a_ref_stands_and_old_refs_make_room() -> None:
    held = ledger(limit=2)
    held.note(1, "A", "first", 0)
    held.note(1, "A", "second", 1)
    assert held.lookup(1, "A") == Entry("first", 0)
    held.note(1, "B", "b", 2)
    held.note(1, "C", "c", 3)
    assert held.lookup(1, "A") is None and held.lookup(1, "C") == Entry("c", 3)


def test_a_ref_maps_to_the_partition_kafkas_default_partitioner_picks() -> None:
    held = ledger()
    for ref in ("W1", "W2", "order-9"):
        assert held.partition_for(ref) == DefaultPartitioner()(ref.encode(), [0, 1], [0, 1])

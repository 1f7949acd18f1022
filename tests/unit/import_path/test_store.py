"""The projection's local store: atomic writes with their checkpoint, pending index,
rebuild from changelog records."""

from __future__ import annotations

from pathlib import Path

from agents.imports import projection
from agents.imports.store import Checkpoint, PartitionStore


def value(price: int, pending: bool) -> projection.Value:
    return {
        "v": [1, price],
        "row": {"Price": price},
        "d": False,
        "p": 1.0 if pending else None,
        "h": None,
    }


def test_write_then_reopen_keeps_values_pending_and_checkpoint(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p0")
    assert store.checkpoint() is None
    store.write(
        {
            b"erp|price|A": (projection.encode(value(1, True)), True, False),
            b"erp|price|B": (projection.encode(value(2, False)), False, False),
            b"erp|stock|C": (projection.encode(value(3, True)), True, False),
        },
        Checkpoint(input=10, commands=2),
    )
    store.close()
    again = PartitionStore(tmp_path / "p0")
    assert again.checkpoint() == Checkpoint(10, 2)
    assert again.pending == 2
    assert list(again.pending_keys(b"erp|price|")) == [b"erp|price|A"]
    assert again.get(b"erp|price|B") == value(2, False)
    assert again.get_many([b"erp|price|A", b"nope"]) == [value(1, True), None]
    # Leaving pending removes the index entry.
    again.write(
        {b"erp|price|A": (projection.encode(value(1, False)), False, True)}, Checkpoint(11, 2)
    )
    assert again.pending == 1
    assert list(again.pending_keys(b"erp|price|")) == []
    again.close()


def test_load_from_changelog_rebuilds_pending_index(tmp_path: Path) -> None:
    store = PartitionStore.fresh(tmp_path / "p1")
    records = [
        (b"k1", projection.encode(value(1, True))),
        (b"k2", projection.encode(value(2, True))),
        (b"k1", projection.encode(value(3, False))),  # later record of k1 wins
        (b"k2", None),  # deleted
    ]
    assert store.load(records, Checkpoint(5, 0)) == 4
    assert store.get(b"k1") == value(3, False)
    assert store.get(b"k2") is None
    assert store.pending == 0
    assert store.checkpoint() == Checkpoint(5, 0)
    store.close()

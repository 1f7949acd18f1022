"""The projection's local store: atomic writes with their checkpoint, pending indexes
(by key and by age), rebuild from changelog records."""

from __future__ import annotations

from pathlib import Path

from agents.imports import projection
from agents.imports.store import Change, Checkpoint, PartitionStore


def value(price: int, since: float | None) -> projection.Value:
    return {"v": [1, price], "row": {"Price": price}, "d": False, "p": since, "h": None}


def change(price: int, since: float | None, before: float | None = None) -> Change:
    return Change(projection.encode(value(price, since)), since, before)


def test_write_then_reopen_keeps_values_pending_and_checkpoint(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p0")
    assert store.checkpoint() is None
    assert store.oldest_pending_since() is None
    store.write(
        {
            b"erp|price|A": change(1, 20.0),
            b"erp|price|B": change(2, None),
            b"erp|price|C": change(3, 10.5),
        },
        Checkpoint(input=10, commands=2),
    )
    store.close()
    again = PartitionStore(tmp_path / "p0")
    assert again.checkpoint() == Checkpoint(10, 2)
    assert again.pending == 2
    assert list(again.pending_keys(b"erp|price|")) == [b"erp|price|A", b"erp|price|C"]
    assert list(again.pending_keys(b"erp|price|", after=b"erp|price|A")) == [b"erp|price|C"]
    assert again.oldest_pending_since() == 10.5
    assert again.get(b"erp|price|B") == value(2, None)
    assert again.get_many([b"erp|price|A", b"nope"]) == [value(1, 20.0), None]
    # Leaving pending removes both index entries; the next oldest is A.
    again.write({b"erp|price|C": change(3, None, before=10.5)}, Checkpoint(11, 2))
    assert again.pending == 1
    assert list(again.pending_keys(b"erp|price|")) == [b"erp|price|A"]
    assert again.oldest_pending_since() == 20.0
    again.close()


def test_load_from_changelog_rebuilds_pending_indexes(tmp_path: Path) -> None:
    store = PartitionStore.fresh(tmp_path / "p1")
    records = [
        (b"k1", projection.encode(value(1, 5.0))),
        (b"k2", projection.encode(value(2, 6.0))),
        (b"k1", projection.encode(value(3, None))),  # later record of k1 wins
        (b"k2", None),  # deleted
        (b"k3", projection.encode(value(4, 7.0))),
    ]
    assert store.load_values(records) == 5
    store.finish_load(Checkpoint(5, 0))
    assert store.get(b"k1") == value(3, None)
    assert store.get(b"k2") is None
    assert store.pending == 1
    assert store.oldest_pending_since() == 7.0
    assert store.checkpoint() == Checkpoint(5, 0)
    store.close()

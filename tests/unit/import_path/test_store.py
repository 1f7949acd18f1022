"""The projection's local store: atomic writes with their checkpoint, pending indexes
(by key and by age), rebuild from changelog records."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_reopen_takes_the_pending_count_from_the_checkpoint_without_walking_the_index(
    tmp_path: Path, monkeypatch
) -> None:
    """A restart of a worker holding millions of pending keys must not count them one by
    one: the count is written with every checkpoint, in the same batch as the index."""
    store = PartitionStore(tmp_path / "p2")
    store.write(
        {b"k1": change(1, 5.0), b"k2": change(2, 6.0), b"k3": change(3, None)},
        Checkpoint(3, 0),
    )
    store.write({b"k1": change(4, None, before=5.0)}, Checkpoint(4, 0))
    store.close()

    def walk(*args: object, **kwargs: object) -> None:
        raise AssertionError("opening a checkpointed store walked the pending index")

    monkeypatch.setattr(PartitionStore, "_scan", walk)
    again = PartitionStore(tmp_path / "p2")
    assert again.pending == 1
    again.close()


def test_a_store_checkpointed_before_the_count_was_kept_is_counted_once(
    tmp_path: Path,
) -> None:
    store = PartitionStore(tmp_path / "p3")
    store.write({b"k1": change(1, 5.0), b"k2": change(2, 6.0)}, Checkpoint(2, 0))
    # An older version's checkpoint: offsets only.
    store.db[b"~checkpoint"] = b'{"input":2,"commands":0}'
    store.close()
    again = PartitionStore(tmp_path / "p3")
    assert again.pending == 2
    assert again.checkpoint() == Checkpoint(2, 0)
    # The next checkpoint writes the count.
    again.write({b"k3": change(3, 7.0)}, Checkpoint(3, 0))
    again.close()
    reopened = PartitionStore(tmp_path / "p3")
    assert reopened.pending == 3
    reopened.close()


def test_a_failed_write_leaves_the_pending_count_as_the_store_holds_it(
    tmp_path: Path, monkeypatch
) -> None:
    store = PartitionStore(tmp_path / "p4")
    store.write({b"k1": change(1, 5.0)}, Checkpoint(1, 0))

    class Refusing:
        def __init__(self, db: object) -> None:
            self.db = db

        def write(self, batch: object) -> None:
            raise OSError("disk full")

        def __getattr__(self, name: str) -> object:
            return getattr(self.db, name)

    real = store.db
    store.db = Refusing(real)  # type: ignore[assignment]
    with pytest.raises(OSError):
        store.write({b"k2": change(2, 6.0)}, Checkpoint(2, 0))
    store.db = real
    assert store.pending == 1
    store.close()
    again = PartitionStore(tmp_path / "p4")
    assert again.pending == 1
    again.close()


def test_a_rebuilt_store_keeps_its_pending_count_for_the_next_open(
    tmp_path: Path, monkeypatch
) -> None:
    store = PartitionStore.fresh(tmp_path / "p5")
    store.load_values(
        [(b"k1", projection.encode(value(1, 5.0))), (b"k2", projection.encode(value(2, None)))]
    )
    store.finish_load(Checkpoint(2, 0))
    store.close()
    monkeypatch.setattr(PartitionStore, "_scan", lambda *a, **k: iter(()))  # no walk
    again = PartitionStore(tmp_path / "p5")
    assert again.pending == 1
    again.close()

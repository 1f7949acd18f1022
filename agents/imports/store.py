"""The projection's local store: one RocksDB database (rocksdict) per input partition.

Keys:
- ``s:<state key>`` -> the value (``agents.imports.projection``, orjson bytes);
- ``p:<state key>`` -> present while the key is pending, so a delta finds its keys with a
  prefix scan instead of reading every value;
- ``q:<since, 8 bytes big-endian ms><state key>`` -> the same keys ordered by the time
  they became pending, so the oldest pending key is the first one (the ops backlog);
- ``~checkpoint`` -> the input and command offsets the store covers, and how many keys
  are pending (so opening a store of 10,000,000 pending keys does not count them).

A checkpoint is one write batch (RocksDB's WAL makes it atomic and survives SIGKILL),
written only after the changelog records of the same batch were acknowledged by the
broker. The store only makes restarts fast: the changelog topic stays the source of
truth, and a store whose checkpoint is behind the group's committed offset is rebuilt
from it. An input partition holds one binding, so one (source, kind): counts per store
are counts per pair.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import orjson
from rocksdict import Options, Rdict, WriteBatch

from agents.imports import projection

_STATE = b"s:"
_PENDING = b"p:"
_BY_AGE = b"q:"
_CHECKPOINT = b"~checkpoint"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Next offsets to read: of the input partition and of its commands partition."""

    input: int
    commands: int


class Change(NamedTuple):
    """One key's new value in a write, with its pending time before and after (a tuple:
    one is built per changed key per checkpoint)."""

    encoded: bytes
    since: float | None
    since_before: float | None


def rocksdb_options() -> Options:
    """Options of a local store: raw keys and values, small memtables."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    # Small memtables: a worker holds several partitions, and RSS must stay bounded.
    options.set_write_buffer_size(8 * 1024 * 1024)
    options.set_max_write_buffer_number(2)
    return options


def _age_key(since: float, key: bytes) -> bytes:
    return _BY_AGE + int(since * 1000).to_bytes(8, "big") + key


def _checkpoint_bytes(checkpoint: Checkpoint, pending: int) -> bytes:
    # The pending count is written in the same batch as the index entries it counts.
    return orjson.dumps(
        {"input": checkpoint.input, "commands": checkpoint.commands, "pending": pending}
    )


@dataclass(slots=True)
class StoreWrite:
    """A write being built: its batch and the change of the pending count it makes."""

    batch: WriteBatch
    pending: int = 0


class PartitionStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = Rdict(str(path), rocksdb_options())
        self.pending = self._stored_pending()

    @classmethod
    def fresh(cls, path: Path) -> PartitionStore:
        """An empty store at ``path`` (whatever was there is removed)."""
        if path.exists():
            shutil.rmtree(path)
        return cls(path)

    def close(self) -> None:
        self.db.close()

    def checkpoint(self) -> Checkpoint | None:
        raw = self.db.get(_CHECKPOINT)
        if raw is None:
            return None
        data = orjson.loads(raw)
        return Checkpoint(input=data["input"], commands=data["commands"])

    def _stored_pending(self) -> int:
        """The pending count the last checkpoint wrote; counted once (a walk of the index,
        ~1 s per 2,000,000 keys) for a store written before the count was kept."""
        raw = self.db.get(_CHECKPOINT)
        if raw is not None:
            held = orjson.loads(raw).get("pending")
            if isinstance(held, int):
                return held
        return sum(1 for _ in self._scan(_PENDING))

    def get_many(self, keys: list[bytes]) -> list[projection.Value | None]:
        raws = self.db.get([_STATE + k for k in keys]) if keys else []
        return [None if raw is None else projection.decode(raw) for raw in raws]

    def get(self, key: bytes) -> projection.Value | None:
        raw = self.db.get(_STATE + key)
        return None if raw is None else projection.decode(raw)

    def write(self, changed: dict[bytes, Change], checkpoint: Checkpoint) -> None:
        """One atomic write of the changed values and the checkpoint."""
        write = self.begin()
        self.add(write, changed.items())
        self.commit(write, checkpoint)

    def begin(self) -> StoreWrite:
        """A write built in parts (:meth:`add`, the caller may yield between them) and
        written at once, atomically, by :meth:`commit`."""
        return StoreWrite(WriteBatch(raw_mode=True))

    def add(self, write: StoreWrite, changed: Iterable[tuple[bytes, Change]]) -> None:
        batch = write.batch
        put = batch.put
        for key, (encoded, since, before) in changed:
            put(_STATE + key, encoded)
            if since != before:  # most changes keep their pending time: no index write
                write.pending += self._index(batch, key, since, before)

    def commit(self, write: StoreWrite, checkpoint: Checkpoint) -> None:
        # The pending count goes in the same atomic write as the index entries it counts;
        # a failed write leaves the count as the store holds it.
        pending = self.pending + write.pending
        write.batch.put(_CHECKPOINT, _checkpoint_bytes(checkpoint, pending))
        self.db.write(write.batch)
        self.pending = pending

    def _index(
        self, batch: WriteBatch, key: bytes, since: float | None, before: float | None
    ) -> int:
        """Index writes of a key's pending time change; returns the change of the count
        of pending keys."""
        if since == before:
            return 0
        delta = 0
        if before is not None:
            batch.delete(_age_key(before, key))
            if since is None:
                batch.delete(_PENDING + key)
                delta -= 1
        if since is not None:
            batch.put(_age_key(since, key), b"")
            if before is None:
                batch.put(_PENDING + key, b"")
                delta += 1
        return delta

    def load_values(self, records: Iterable[tuple[bytes, bytes | None]]) -> int:
        """Write changelog records (key, value; None = deleted) in changelog order into a
        store being rebuilt: a later record of a key overwrites an earlier one. The
        pending indexes are built once at the end (:meth:`finish_load`). Returns how many
        records were written."""
        batch = WriteBatch(raw_mode=True)
        count = 0
        for key, raw in records:
            if raw is None:
                batch.delete(_STATE + key)
            else:
                batch.put(_STATE + key, raw)
            count += 1
        self.db.write(batch)
        return count

    def finish_load(self, checkpoint: Checkpoint) -> None:
        """Index the pending keys of the loaded values and write the checkpoint."""
        batch = WriteBatch(raw_mode=True)
        indexed = 0
        for key, value in self.values():
            since = value.get("p")
            if since is None:
                continue
            self.pending += self._index(batch, key, since, None)
            indexed += 1
            if indexed % 50_000 == 0:
                self.db.write(batch)
                batch = WriteBatch(raw_mode=True)
        batch.put(_CHECKPOINT, _checkpoint_bytes(checkpoint, self.pending))
        self.db.write(batch)

    def pending_keys(self, prefix: bytes = b"", after: bytes | None = None) -> Iterator[bytes]:
        """Pending state keys starting with ``prefix``, in key order, after ``after``."""
        start = _PENDING + prefix
        for key in self._scan(start, _PENDING + after if after is not None else None):
            yield key[len(_PENDING) :]

    def oldest_pending_since(self) -> float | None:
        for key in self._scan(_BY_AGE):
            return int.from_bytes(key[len(_BY_AGE) : len(_BY_AGE) + 8], "big") / 1000
        return None

    def values(self, prefix: bytes = b"") -> Iterator[tuple[bytes, projection.Value]]:
        it = self.db.iter()
        start = _STATE + prefix
        it.seek(start)
        while it.valid():
            key = it.key()
            if not key.startswith(start):
                break
            yield key[len(_STATE) :], projection.decode(it.value())
            it.next()

    def _scan(self, prefix: bytes, after: bytes | None = None) -> Iterator[bytes]:
        it = self.db.iter()
        it.seek(after if after is not None else prefix)
        if after is not None and it.valid() and it.key() == after:
            it.next()
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                break
            yield key
            it.next()

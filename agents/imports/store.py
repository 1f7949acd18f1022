"""The projection's local store: one RocksDB database (rocksdict) per input partition.

Keys: ``s:<state key>`` -> the value (``agents.imports.projection``, orjson bytes);
``p:<state key>`` -> empty, present while the key is pending (so a delta finds its keys
with a prefix scan instead of reading every value); ``~checkpoint`` -> the input and
command offsets the store covers. A checkpoint is one write batch (RocksDB's WAL makes
it atomic and survives SIGKILL), written only after the changelog records of the same
batch were acknowledged by the broker.

The store only makes restarts fast: the changelog topic stays the source of truth, and a
store whose checkpoint is behind the group's committed offset is rebuilt from it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from rocksdict import Options, Rdict, WriteBatch

from agents.imports import projection

_STATE = b"s:"
_PENDING = b"p:"
_CHECKPOINT = b"~checkpoint"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Next offsets to read: of the input partition and of its commands partition."""

    input: int
    commands: int


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    # Small memtables: a worker holds several partitions, and RSS must stay bounded.
    options.set_write_buffer_size(8 * 1024 * 1024)
    options.set_max_write_buffer_number(2)
    return options


class PartitionStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = Rdict(str(path), _options())
        self.pending = self._count(_PENDING)

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

    def get_many(self, keys: list[bytes]) -> list[projection.Value | None]:
        raws = self.db.get([_STATE + k for k in keys]) if keys else []
        return [None if raw is None else projection.decode(raw) for raw in raws]

    def get(self, key: bytes) -> projection.Value | None:
        raw = self.db.get(_STATE + key)
        return None if raw is None else projection.decode(raw)

    def write(
        self,
        changed: dict[bytes, tuple[bytes, bool, bool]],
        checkpoint: Checkpoint,
    ) -> None:
        """One atomic write: ``changed`` maps state key -> (encoded value, pending now,
        pending before), plus the checkpoint."""
        batch = WriteBatch(raw_mode=True)
        for key, (encoded, pending, was_pending) in changed.items():
            batch.put(_STATE + key, encoded)
            if pending and not was_pending:
                batch.put(_PENDING + key, b"")
                self.pending += 1
            elif was_pending and not pending:
                batch.delete(_PENDING + key)
                self.pending -= 1
        batch.put(
            _CHECKPOINT, orjson.dumps({"input": checkpoint.input, "commands": checkpoint.commands})
        )
        self.db.write(batch)

    def load(self, records: Iterable[tuple[bytes, bytes | None]], checkpoint: Checkpoint) -> int:
        """Fill an empty store from changelog records (key, value; None = deleted)."""
        count = 0
        batch = WriteBatch(raw_mode=True)
        for key, raw in records:
            if raw is None:
                batch.delete(_STATE + key)
                batch.delete(_PENDING + key)
            else:
                batch.put(_STATE + key, raw)
                if projection.is_pending(projection.decode(raw)):
                    batch.put(_PENDING + key, b"")
                else:
                    batch.delete(_PENDING + key)
            count += 1
            if count % 50_000 == 0:
                self.db.write(batch)
                batch = WriteBatch(raw_mode=True)
        batch.put(
            _CHECKPOINT, orjson.dumps({"input": checkpoint.input, "commands": checkpoint.commands})
        )
        self.db.write(batch)
        self.pending = self._count(_PENDING)
        return count

    def pending_keys(self, prefix: bytes = b"") -> Iterator[bytes]:
        """Pending state keys starting with ``prefix``, in key order."""
        start = _PENDING + prefix
        it = self.db.iter()
        it.seek(start)
        while it.valid():
            key = it.key()
            if not key.startswith(start):
                break
            yield key[len(_PENDING) :]
            it.next()

    def values(self, prefix: bytes = b"") -> Iterator[tuple[bytes, projection.Value]]:
        start = _STATE + prefix
        it = self.db.iter()
        it.seek(start)
        while it.valid():
            key = it.key()
            if not key.startswith(start):
                break
            yield key[len(_STATE) :], projection.decode(it.value())
            it.next()

    def _count(self, prefix: bytes) -> int:
        it = self.db.iter()
        it.seek(prefix)
        count = 0
        while it.valid() and it.key().startswith(prefix):
            count += 1
            it.next()
        return count

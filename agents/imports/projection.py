"""The event-sourced projection: pure transitions of one key's value.

One value per state key (``source|kind|key``) holds the latest row, its version, whether
and since when it waits for a delta, and a digest of the row last sent to Norce::

    {"v": [ts_ms, position], "row": {...}, "d": deleted, "p": pending_since | None,
     "h": digest of the row last sent | None}

The value is stored as orjson bytes, in the projection's local store and as the record
on its compacted changelog topic (one record per changed key per checkpoint). Nothing
here does I/O: the projector (``agents.imports.projector``) folds batches through these
functions, the delta submitter marks keys sent, the tracker's requeue puts them back.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import orjson

from streams.records import VersionKey, version_key, version_key_newer

Value = dict[str, Any]


class State(NamedTuple):
    """A value read back, typed, for the code that reads values: views, reconcile, the
    full file. The fold keeps the dict (building a record per change would cost ingest
    time, and the dict is what orjson stores)."""

    version: list[int]  # [ts_ms, position]
    row: dict[str, Any]
    deleted: bool
    pending_since: float | None  # None: not waiting for a delta
    sent_digest: str | None  # the digest of the row last sent to Norce

    @classmethod
    def of(cls, value: Value) -> State:
        return cls(
            list(value["v"]), value["row"], bool(value.get("d")), value.get("p"), value.get("h")
        )

    @property
    def pending(self) -> bool:
        return self.pending_since is not None

    @property
    def row_sent(self) -> bool:
        """Norce was sent exactly this row (and deletion)."""
        return self.sent_digest is not None and self.sent_digest == row_digest(
            self.row, self.deleted
        )


def row_digest(row: dict[str, Any], deleted: bool) -> str:
    """What Norce holds after a successful write of this row (the deactivation included)."""
    return hashlib.blake2b(orjson.dumps((row, deleted)), digest_size=8).hexdigest()


def fold_change(
    current: Value | None,
    version: list[int],
    row: dict[str, Any],
    deleted: bool,
    now: float,
    key: VersionKey | None = None,
    history: str | None = None,
    snapshot: bool = False,
) -> Value | None:
    """The key's new value, or ``None`` when the change is not newer than what is held.
    ``key`` is ``version_key(*version)`` when the caller has it already.

    Equal versions are duplicates (Debezium re-delivers after a connector restart) and
    are dropped like older ones: no delta may ever carry an older value. A change whose
    row equals the row last sent to Norce is not pending (Norce already holds it).

    Positions compare only within one history (``new_history``): a change from another
    history is newer because it arrived later (the fold runs in Kafka order).
    """
    if current is None:
        sent = since = None
    else:
        new_key = key or version_key(*version)
        held_key = version_key(*current["v"])
        # version_key_newer, its common case (one position shape) inline: once per change.
        newer = new_key > held_key if new_key[0] == held_key[0] else None
        if newer is None:
            newer = version_key_newer(new_key, held_key)
        if not newer and not new_history(current, new_key, history, snapshot):
            return None
        if deleted:
            # A delete's before-image may hold only the key: keep the last known values,
            # so the deactivation does not blank the fields this source owns.
            row = {**current["row"], **row}
        sent = current.get("h")
        since = current.get("p")
    if sent is not None and sent == row_digest(row, deleted):
        since = None
    elif since is None:
        since = now
    value = {"v": list(version), "row": row, "d": deleted, "p": since, "h": sent}
    if history is not None:
        value["e"] = history
    return value


def new_history(current: Value, key: VersionKey, history: str | None, snapshot: bool) -> bool:
    """Whether a change not newer by position starts a new history of the key's source:

    - its history mark differs from the held one (MySQL: another server or GTID source,
      as after a failover; values stored without a mark compare by position);
    - it is a snapshot read whose version is strictly below the held one (a re-snapshot,
      as after a binlog reset, a restore or a new replication slot). A snapshot read at
      the held version is a duplicate and is dropped.
    """
    held = current.get("e")
    if history is not None and held is not None and history != held:
        return True
    return snapshot and version_key_newer(version_key(*current["v"]), key)


def mark_sent(current: Value | None, sent_version: list[int]) -> Value | None:
    """The value after Norce accepted a job holding the key at ``sent_version``; None
    when nothing changes. A key leaves pending only if the version sent is still the one
    held: a change that arrived while the job was being posted goes out with the next
    delta."""
    if current is None or list(current["v"]) != list(sent_version):
        return None
    digest = row_digest(current["row"], current["d"])
    if current.get("p") is None and current.get("h") == digest:
        return None
    return {**current, "p": None, "h": digest}


def requeue(current: Value | None, now: float) -> Value | None:
    """Pending again from the current state (a failed or overdue job); None when the key
    is unknown or already pending. The sent digest is forgotten: Norce may not hold it."""
    if current is None:
        return None
    if current.get("p") is not None and current.get("h") is None:
        return None
    return {**current, "p": current.get("p") or now, "h": None}


def is_pending(value: Value) -> bool:
    return value.get("p") is not None


def encode(value: Value) -> bytes:
    return orjson.dumps(value)


def decode(data: bytes) -> Value:
    value: Value = orjson.loads(data)
    return value

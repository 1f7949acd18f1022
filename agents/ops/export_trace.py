"""One export entity followed from its webhooks to the target topics: what
``GET /items/export/{kind}/{id}`` and ``norce-sync item --export`` show. Pure: the view
(``agents.ops.export_view``) reads the entity's partition of the events topic, of each
target topic and of the digests changelog, and this module says what they mean.

"Unchanged": enrichment produces a target record only when its content digest differs
from the last one produced for the key (``agents.export.enrich``, ``export_dedupe``), so
an event newer than a target's last record, settled with nothing produced, means the
lookup mapped to the same record. The view also maps what Query holds now and says
whether that equals the last record produced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner

from agents.export.events import ENTITY_KINDS

MAX_EVENTS = 5
# Records scanned per topic partition, backwards from its end, before giving up.
MAX_SCAN = 50_000
CHUNK = 5_000
DELETED_HEADER = "norce-deleted"
EVENT_TYPE_HEADER = "norce-event-type"

_partitioner = DefaultPartitioner()


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka's and the Java
    client's) gives ``key`` in a topic of ``partitions`` partitions."""
    every = list(range(partitions))
    return int(_partitioner(key, every, every))


def kind_problem(kind: str, exported: Iterable[str]) -> str | None:
    """Why ``kind`` cannot be traced on the export side (None: it can)."""
    wanted = sorted(set(exported))
    if kind not in ENTITY_KINDS:
        hint = " (price and stock events re-read their SKU: ask for kind sku)"
        extra = hint if kind in ("price", "stock", "product") else ""
        return f"{kind!r} is not an export entity kind (kinds: {', '.join(ENTITY_KINDS)}){extra}"
    if kind not in wanted:
        return (
            f"no export target wants kind {kind!r} (exported kinds: {', '.join(wanted) or 'none'})"
        )
    return None


@dataclass(frozen=True)
class Stored:
    """A record of the entity as read from its partition (offset, broker time in ms)."""

    offset: int
    timestamp_ms: int
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True)
class Scan:
    """What a backwards read of one topic partition found for the key, newest first."""

    topic: str
    partition: int
    records: Sequence[Stored]
    scanned: int
    complete: bool  # read back to the partition's beginning (False: stopped at MAX_SCAN)

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "scanned": self.scanned,
        }
        if not self.records and not self.complete:
            out["note"] = f"scan stopped after {self.scanned} records without finding the key"
        return out


def digest_of(value: bytes | None) -> str:
    """A target record's content digest, as enrichment computes it (``OutRecord.digest``)."""
    data = b"\x00tombstone" if value is None else value
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def events_view(scan: Scan, limit: int = MAX_EVENTS) -> list[dict[str, Any]]:
    """The entity's last events, newest first: time, event type, body (an undecodable
    one says so)."""
    out = []
    for record in scan.records[:limit]:
        entry: dict[str, Any] = {"offset": record.offset, "time": record.timestamp_ms / 1000}
        try:
            event = orjson.loads(record.value or b"")
            entry["event_type"] = event["event_type"]
            entry["received_at"] = event.get("received_at")
            entry["body"] = event.get("body")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            entry["error"] = "not a Norce event (dead-lettered by enrichment)"
        out.append(entry)
    return out


def target_view(
    target: str, scan: Scan, stored_digest: str | None, current_digest: str | None
) -> dict[str, Any]:
    """The last record produced to one target topic and whether the entity's newest
    lookup was unchanged against it."""
    out: dict[str, Any] = {"target": target, **scan.view()}
    if not scan.records:
        out["last_record"] = None
        return out
    last = scan.records[0]
    digest = digest_of(last.value)
    out["last_record"] = {
        "offset": last.offset,
        "time": last.timestamp_ms / 1000,
        "deleted": last.value is None,
        "event_types": _header(last.headers, EVENT_TYPE_HEADER),
        "digest": digest,
        "value": None if last.value is None else _json_or_text(last.value),
    }
    # The changelog's digest is what the next lookup is compared with (None: dedupe off,
    # or forgotten beyond export_digests_per_partition: the next record is produced).
    out["stored_digest"] = stored_digest
    out["current_digest"] = current_digest
    if current_digest is not None:
        out["unchanged"] = current_digest == digest
    return out


def _json_or_text(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value.decode(errors="replace")


def stored_digests(scan: Scan) -> dict[str, str]:
    """The entity's digests per target topic from its newest changelog record ({} when
    there is none or it was forgotten)."""
    if not scan.records or scan.records[0].value is None:
        return {}
    try:
        held = orjson.loads(scan.records[0].value)
    except orjson.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in held.items()} if isinstance(held, dict) else {}


def verdict(events: Scan, targets: Sequence[Mapping[str, Any]]) -> str:
    """One line: why the newest event did (or did not) produce a record."""
    if not events.records:
        return "no event received for this entity" + (
            "" if events.complete else f" in the last {events.scanned} records scanned"
        )
    newest = events.records[0].timestamp_ms
    produced = [t for t in targets if t["last_record"] is not None]
    if not produced:
        return "events received, no record produced yet (being looked up, or dead-lettered)"
    behind = [t for t in produced if t["last_record"]["time"] * 1000 < newest]
    if not behind:
        return "the newest event produced a record for every target"
    same = [t["target"] for t in behind if t.get("unchanged")]
    if same and len(same) == len(behind):
        return (
            f"unchanged: the newest event's lookup maps to the last record of "
            f"{', '.join(same)} (same digest), so nothing was produced"
        )
    changed = [t["target"] for t in behind if t.get("unchanged") is False]
    if changed:
        return (
            f"Query now maps to a different record for {', '.join(changed)}: the newest "
            "event is still being looked up (or its lookup failed: see the dead letters)"
        )
    return "newer events than the last records; whether they changed anything is not known"

"""One reconcile of a (source, kind): the state changelog against Norce Query, in bounded
memory.

1. The state: the pair's records of ``<app>-state.<topic>``, every partition up to a
   snapshot of its end offsets (the reading path of the full import,
   ``streams.kafka.partition_records``), go into a scratch RocksDB keyed by Norce key as
   what Norce should hold (``rules.expect``). A later record of a key overwrites an
   earlier one, so one pass suffices; memory holds one fetch.
2. Norce: Query pages of the kind (``$select`` of the owned fields, following
   ``@odata.nextLink``; 429 waits for ``Retry-After`` in the client's retry policy; stock
   is a page of SKUs with their ``OnHands`` expanded, flattened to rows). Each page is
   looked up in the scratch store in one multi-get, classified, and its keys are marked
   seen.
3. A merge of the two sorted key ranges (expected, seen) finds the items Norce lacks.

The scratch store is the external sort: RocksDB keeps the keys ordered on disk, so a
million items cost a few MiB of memory (its write buffers), not a dict of a million keys.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rocksdict import Rdict, WriteBatch

from agents.imports import projection
from agents.imports.store import rocksdb_options
from agents.reconcile.rules import REPAIRABLE, Expected, Plan, Tally, expect, scope_of
from norce.odata import ODataQuery
from norce.query import ODataPage
from streams.kafka import partition_records, partitions_of

_EXPECTED = b"e:"
_SEEN = b"n:"

# (phase, done, total): phase "state" counts changelog records, "norce" Query rows.
Progress = Callable[[str, int, int], Awaitable[None]]
# State keys -> why each is held back (a reference not in Norce); absent: not held back.
Held = Callable[[list[str]], Awaitable[dict[str, str]]]
# Keys to make pending again: (state key, changelog partition) pairs.
Repair = Callable[[list[tuple[str, int]]], Awaitable[None]]
Pages = Callable[[str, ODataQuery], AsyncIterator[ODataPage]]


@dataclass
class Outcome:
    tally: Tally
    repaired: int
    duration_s: float


class Scratch:
    """A throw-away RocksDB under ``path`` (removed on close)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = Rdict(str(path), rocksdb_options())

    def close(self) -> None:
        self.db.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        it = self.db.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                return
            yield key[len(prefix) :], it.value()
            it.next()


async def reconcile(
    plan: Plan,
    reader: AIOKafkaConsumer,
    state_topic: str,
    pages: Pages,
    scratch_dir: Path,
    *,
    progress: Progress | None = None,
    repair: Repair | None = None,
    held: Held | None = None,
) -> Outcome:
    """Compare and classify every item of the pair; ``repair`` gets the keys found
    different or missing (a page or a merge chunk at a time)."""
    started = time.monotonic()
    tally = Tally()
    scratch = Scratch(scratch_dir)
    repaired = 0
    try:
        scopes = await _load_state(plan, reader, state_topic, scratch, tally, progress)
        repaired += await _compare_norce(plan, pages, scratch, tally, scopes, progress, repair)
        repaired += await _find_missing(scratch, tally, repair, held)
    finally:
        scratch.close()
    return Outcome(tally, repaired, time.monotonic() - started)


async def _load_state(
    plan: Plan,
    reader: AIOKafkaConsumer,
    topic: str,
    scratch: Scratch,
    tally: Tally,
    progress: Progress | None,
) -> set[Any]:
    prefix = f"{plan.binding.source}|{plan.binding.kind}|".encode()
    cut = len(prefix)
    tps = await partitions_of(reader, topic)
    ends = await reader.end_offsets(tps) if tps else {}
    begins = await reader.beginning_offsets(tps) if tps else {}
    total = sum(ends[tp] - begins[tp] for tp in tps)
    done = 0
    scopes: set[Any] = set()
    db = scratch.db
    for tp in tps:
        batch = WriteBatch(raw_mode=True)
        pending = 0
        async for record in partition_records(reader, tp, ends[tp]):
            done += 1
            key = record.key
            if key is None or not key.startswith(prefix):
                continue
            target = _EXPECTED + key[cut:]
            if record.value is None:
                batch.delete(target)
            else:
                expected = expect(plan, projection.decode(record.value))
                if expected.scope is not None and not expected.deleted:
                    scopes.add(expected.scope)
                packed = expected.pack(tp.partition, key.decode())
                batch.put(target, orjson.dumps(packed))
            pending += 1
            if pending >= 5000:
                db.write(batch)
                batch = WriteBatch(raw_mode=True)
                pending = 0
                if progress is not None:
                    await progress("state", done, total)
        db.write(batch)
    if progress is not None:
        await progress("state", total, total)
    tally.state_items = sum(1 for _ in scratch.scan(_EXPECTED))
    return scopes


async def _compare_norce(
    plan: Plan,
    pages: Pages,
    scratch: Scratch,
    tally: Tally,
    scopes: set[Any],
    progress: Progress | None,
    repair: Repair | None,
) -> int:
    db = scratch.db
    repaired = 0
    async for page in pages(plan.spec.entity_set, plan.query):
        rows = list(plan.items(page.value))
        keys = [plan.key(r).encode() for r in rows]
        looked = db.get([_EXPECTED + k for k in keys] + [_SEEN + k for k in keys])
        expected_raw, seen_raw = looked[: len(keys)], looked[len(keys) :]
        batch = WriteBatch(raw_mode=True)
        fix: list[tuple[str, int]] = []
        for key, row, raw, seen in zip(keys, rows, expected_raw, seen_raw, strict=True):
            if seen is not None:
                continue  # offset paging can repeat a row when Norce changes meanwhile
            batch.put(_SEEN + key, b"")
            tally.norce_items += 1
            text = key.decode()
            if raw is None:
                tally.absent(text, row, scope_of(plan, row, scopes))
                continue
            partition, state_key, expected = Expected.unpack(orjson.loads(raw))
            if tally.compared(text, expected, row) in REPAIRABLE:
                fix.append((state_key, partition))
        db.write(batch)
        if fix and repair is not None:
            await repair(fix)
            repaired += len(fix)
        if progress is not None:
            await progress("norce", tally.norce_items, max(tally.state_items, tally.norce_items))
    return repaired


async def _find_missing(
    scratch: Scratch, tally: Tally, repair: Repair | None, held: Held | None = None
) -> int:
    """Merge the expected keys with the seen ones (both in key order); the keys Norce
    lacks are classified a chunk at a time (``held`` looks their references up)."""
    seen = scratch.scan(_SEEN)
    next_seen = next(seen, None)
    chunk: list[tuple[str, int, str, Expected]] = []
    repaired = 0
    for key, raw in scratch.scan(_EXPECTED):
        while next_seen is not None and next_seen[0] < key:
            next_seen = next(seen, None)
        if next_seen is not None and next_seen[0] == key:
            continue
        partition, state_key, expected = Expected.unpack(orjson.loads(raw))
        chunk.append((key.decode(), partition, state_key, expected))
        if len(chunk) >= 1000:
            repaired += await _classify_missing(chunk, tally, repair, held)
            chunk = []
    if chunk:
        repaired += await _classify_missing(chunk, tally, repair, held)
    return repaired


async def _classify_missing(
    chunk: list[tuple[str, int, str, Expected]],
    tally: Tally,
    repair: Repair | None,
    held: Held | None,
) -> int:
    live = [state_key for _, _, state_key, expected in chunk if not expected.deleted]
    reasons = await held(live) if held is not None and live else {}
    fix = [
        (state_key, partition)
        for key, partition, state_key, expected in chunk
        if tally.missing(key, expected, reasons.get(state_key)) in REPAIRABLE
    ]
    if fix and repair is not None:
        await repair(fix)
        return len(fix)
    return 0

"""References: rows that refer to another Norce entity go out only once it exists.

Norce ignores a price whose SKU or price list does not exist, and stock whose SKU does
not exist, and still reports the job succeeded (norce-api.md, "Rows Norce ignores"). So
before every delta and full import of such a kind, the rows' references are looked up in
Query: one ``or``-filtered request per group of keys, ``$select`` of the key only.

What each kind refers to (``REFERENCES``):

- ``price``: its SKU (``PartNo`` in ``Products/ProductSkus``) and its price list
  (``PriceListCode`` in ``Application/ClientPriceLists``);
- ``stock``: its SKU. Warehouses and locations are not checked: norce-api.md does not
  say Norce ignores stock of an unknown warehouse.
- ``product``, ``customer``, ``pricelist``: nothing (they create what they name).

Answers are cached: a reference that exists for ``reference_found_ttl_s`` (entities are
rarely deleted), a missing one only for ``reference_missing_ttl_s``. A :class:`Lookups`
session (one per delta or full import) never asks Query twice for the same reference.
A row whose reference is missing stays pending with its reason (``Waiting``), and the
next delta of its pair sends it once the reference exists (see
``agents.imports.reference_watch`` for what triggers that delta).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from norce.odata import ODataQuery, Value
from norce.query import QueryClient, key_filter, plan_key_groups


@dataclass(frozen=True, eq=False)
class Reference:
    """A kind of Norce entity a row may refer to. One instance per kind (the constants
    below), compared and hashed by identity: a delta hashes (reference, key) pairs
    hundreds of thousands of times, and a field-wise hash was a large part of its CPU."""

    name: str  # for reasons: "SKU P-1 not in Norce"
    row_field: str  # the row's field that names it
    entity_set: str  # where Query has it
    key_prop: str  # its key there


SKU = Reference("SKU", "PartNo", "Products/ProductSkus", "PartNo")
# In Query a price list's code is its Agreement (norce-api.md).
PRICE_LIST = Reference("price list", "PriceListCode", "Application/ClientPriceLists", "Agreement")
REFERENCES: dict[str, tuple[Reference, ...]] = {"price": (SKU, PRICE_LIST), "stock": (SKU,)}
# Import kinds whose successful jobs create references of this kind.
CREATED_BY: dict[str, Reference] = {"product": SKU, "pricelist": PRICE_LIST}

Ref = tuple[Reference, str]


def refers(kind: str) -> bool:
    return kind in REFERENCES


def references_of(kind: str, row: dict[str, Any]) -> list[Ref]:
    out = []
    for ref in REFERENCES.get(kind, ()):
        value = row.get(ref.row_field)
        if value is not None and value != "":
            out.append((ref, str(value)))
    return out


def reason(ref: Reference, value: str) -> str:
    return f"{ref.name} {value} not in Norce"


class ReferenceCache:
    """Existence answers per reference: positive ones for a long TTL, negative briefly.
    Bounded: the oldest entries go first beyond ``max_entries``."""

    def __init__(
        self,
        found_ttl: float,
        missing_ttl: float,
        *,
        max_entries: int = 2_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.found_ttl = found_ttl
        self.missing_ttl = missing_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._values: dict[Ref, tuple[float, bool]] = {}

    def get(self, ref: Ref, *, trust_missing: bool = True) -> bool | None:
        entry = self._values.get(ref)
        if entry is None:
            return None
        expires, exists = entry
        if self._clock() >= expires:
            del self._values[ref]
            return None
        if not exists and not trust_missing:
            return None
        return exists

    def put(self, ref: Ref, exists: bool) -> None:
        ttl = self.found_ttl if exists else self.missing_ttl
        if ttl <= 0:
            return
        self._values.pop(ref, None)  # re-insert: dicts keep insertion order (oldest first)
        self._values[ref] = (self._clock() + ttl, exists)
        while len(self._values) > self.max_entries:
            del self._values[next(iter(self._values))]

    def forget_missing(self, reference: Reference | None = None) -> int:
        """Drop negative answers (of one reference kind): a job that may have created
        them succeeded. Returns how many were dropped."""
        doomed = [
            k
            for k, (_, exists) in self._values.items()
            if not exists and (reference is None or k[0] == reference)
        ]
        for k in doomed:
            del self._values[k]
        return len(doomed)


@dataclass
class Lookups:
    """One delta's (or full import's) lookups: every reference asked at most once.

    ``fresh=True`` (the periodic re-check) does not trust cached negative answers."""

    query: QueryClient
    cache: ReferenceCache
    group_size: int = 100
    max_url: int = 4000
    concurrency: int = 4  # Query requests in flight at once
    fresh: bool = False
    known: dict[Ref, bool] = field(default_factory=dict)
    query_calls: int = 0

    async def resolve(self, refs: Iterable[Ref]) -> None:
        """Look up every reference not known yet, in groups per reference kind."""
        todo: dict[Reference, list[str]] = {}
        for ref in refs:
            if ref in self.known:
                continue
            cached = self.cache.get(ref, trust_missing=not self.fresh)
            if cached is not None:
                self.known[ref] = cached
                continue
            self.known[ref] = False  # until found; also dedups within this call
            todo.setdefault(ref[0], []).append(ref[1])
        # One bound for every kind's groups: the price lists' request overlaps the SKUs'.
        limit = asyncio.Semaphore(max(1, self.concurrency))
        await asyncio.gather(*(self._look_up(ref, values, limit) for ref, values in todo.items()))

    async def _look_up(
        self, reference: Reference, values: Sequence[str], limit: asyncio.Semaphore
    ) -> None:
        base = ODataQuery().select(reference.key_prop)
        groups = plan_key_groups(
            self.query.base_url,
            reference.entity_set,
            base,
            reference.key_prop,
            values,
            group_size=self.group_size,
            max_url=self.max_url,
        )

        async def one(group: list[Value]) -> None:
            found: set[str] = set()
            query = key_filter(base, reference.key_prop, group)
            async with limit:
                async for page in self.query.pages(reference.entity_set, query):
                    self.query_calls += 1
                    for entity in page.value:
                        key = entity.get(reference.key_prop)
                        if key is not None:
                            found.add(str(key))
            for value in group:
                exists = str(value) in found
                self.known[(reference, str(value))] = exists
                self.cache.put((reference, str(value)), exists)

        # Bounded concurrency: Query's round trips overlap; an error fails the whole
        # check (nothing is sent unchecked); the requests still running are left to end.
        await asyncio.gather(*(one(group) for group in groups))

    async def missing(self, kind: str, rows: Sequence[dict[str, Any]]) -> list[str | None]:
        """Per row: why it must wait (the first missing reference), or None to send it."""
        per_row = [references_of(kind, row) for row in rows]
        await self.resolve(ref for refs in per_row for ref in refs)
        out: list[str | None] = []
        for refs in per_row:
            gone = next((r for r in refs if not self.known.get(r, False)), None)
            out.append(None if gone is None else reason(*gone))
        return out


T = TypeVar("T")
R = TypeVar("R")


async def one_ahead(items: AsyncIterator[T], work: Callable[[T], Awaitable[R]]) -> AsyncIterator[R]:
    """``work(item)`` for each item, results in order. The next item is read and its work
    started before a result is handed out, so what the caller does with it (a delta
    POSTs a batch) overlaps the next chunk's reading and reference lookups. One work at a
    time: a ``Lookups`` session's memo is complete before the next check reads it. Close
    it (``contextlib.aclosing``) when leaving early: the work under way is cancelled."""
    task: asyncio.Future[R] | None = None
    try:
        async for item in items:
            if task is None:
                task = asyncio.ensure_future(work(item))
                continue
            result = await task
            task = asyncio.ensure_future(work(item))
            yield result
        if task is not None:
            result = await task
            task = None
            yield result
    finally:
        if task is not None:
            # Not awaited here: a cancellation of the caller must not be swallowed. Its
            # error, if any, is moot (the caller left) and is retrieved to stay quiet.
            task.cancel()
            task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


@dataclass
class PairWaiting:
    """What one (source, kind) holds back on this worker, as its last delta found it."""

    count: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)  # key, reason
    missing: set[Ref] = field(default_factory=set)  # bounded by MAX_MISSING
    checked_at: float = 0.0
    # Per input partition: count and examples (the ops backlog reports per partition, so
    # the views can answer for the whole group).
    partitions: dict[int, dict[str, Any]] = field(default_factory=dict)


MAX_EXAMPLES = 10
MAX_MISSING = 10_000


class Waiting:
    """Rows held back for a missing reference, per pair (this worker's partitions).
    Rebuilt by each delta of the pair: a row sent or no longer pending drops out."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], PairWaiting] = {}

    def begin(self) -> PairWaiting:
        return PairWaiting(checked_at=time.time())

    @staticmethod
    def add(
        report: PairWaiting, key: str, why: str, refs: Iterable[Ref], partition: int = 0
    ) -> None:
        report.count += 1
        example = {"key": key, "reason": why}
        if len(report.examples) < MAX_EXAMPLES:
            report.examples.append(example)
        part = report.partitions.setdefault(partition, {"count": 0, "examples": []})
        part["count"] += 1
        if len(part["examples"]) < MAX_EXAMPLES:
            part["examples"].append(example)
        for ref in refs:
            if len(report.missing) < MAX_MISSING:
                report.missing.add(ref)

    def finish(self, pair: tuple[str, str], report: PairWaiting) -> None:
        if report.count:
            self.pairs[pair] = report
        else:
            self.pairs.pop(pair, None)

    def count(self, pair: tuple[str, str]) -> int:
        report = self.pairs.get(pair)
        return report.count if report else 0

    def waiting_on(self, reference: Reference) -> list[tuple[str, str]]:
        """Pairs holding rows back for a reference of this kind."""
        return [
            pair
            for pair, report in self.pairs.items()
            if any(ref[0] == reference for ref in report.missing)
        ]

    def for_partition(self, partition: int) -> dict[str, dict[str, Any]]:
        """What this worker holds back in one input partition, per ``source|kind`` (for
        the partition's backlog report)."""
        out = {}
        for (source, kind), report in self.pairs.items():
            part = report.partitions.get(partition)
            if part is not None:
                out[f"{source}|{kind}"] = {"count": part["count"], "examples": part["examples"]}
        return out

    def view(self) -> dict[str, dict[str, Any]]:
        """For /pending/, the dashboard and the CLI: per ``source|kind``."""
        return {
            f"{source}|{kind}": {
                "count": report.count,
                "examples": list(report.examples),
                "checked_at": report.checked_at,
            }
            for (source, kind), report in sorted(self.pairs.items())
        }

"""The export path's pure parts: Query lookups of an entity and its mapping per target.

``EntityLookup.fetch(kind, id)`` reads one entity from Query (``None`` when Query answers
404) and attaches cached reference data. ``EntityLookup.fetch_group(kind, ids)`` reads
many in one request (``$filter=PartNo eq 'A' or PartNo eq 'B' ...``, same ``$expand``,
``@odata.nextLink`` followed); an id missing from the answer is confirmed with the
single lookup (gone only when that answers 404).
``plan_groups`` cuts the ids of a flush into such groups, bounded in size and URL length.
``build_records`` maps that document with every
target's mapping for the kind into ``OutRecord``s for ``<prefix>out.<target>.<kind>``:

- key: the entity id (PartNo for SKUs, the customer's numeric Id for customers, which
  is what ``CustomerChangedNotification`` names);
- value: the mapped JSON, or a **tombstone** (null value, header ``norce-deleted: true``)
  when Query answered 404. A tombstone is Kafka's own deletion marker: sinks such as
  Kafka Connect's delete on it, and compaction of the (compacted) target topics then
  drops the key altogether;
- headers: ``norce-event-type`` (the distinct types that led to this record, comma
  separated), ``received-at`` (epoch seconds of the earliest of them at intake) and
  ``norce-event-count`` (how many events were coalesced into it).

SKU documents are ``Products/ProductSkus('<PartNo>')`` with their active ``PriceLists``
and ``OnHands`` expanded; each price row gets ``PriceList``, the head of its price list
from ``Application/ClientPriceLists`` (name, currency), cached for a TTL.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from agents.config.mapping import Mapper, MappingError
from agents.config.sync_config import SyncConfig
from agents.export.query_cache import TtlCache
from norce.odata import ODataQuery, Value, eq
from norce.query import QueryClient, key_filter, key_url_length, plan_key_groups

SKU_SET = "Products/ProductSkus"
CUSTOMER_SET = "Customers/Customers"
PRICE_LIST_SET = "Application/ClientPriceLists"
SKU_QUERY = (
    ODataQuery()
    .expand("PriceLists", filter=eq("IsActive", True))
    .expand("OnHands", filter=eq("IsActive", True))
)
COMPANY_SET = "Customers/CustomerCompanies"
SUPPORTED_KINDS = ("sku", "customer", "company")
# kind -> (entity set, key property, query): what a lookup of that kind asks Query
LOOKUPS: dict[str, tuple[str, str, ODataQuery]] = {
    "sku": (SKU_SET, "PartNo", SKU_QUERY),
    "customer": (CUSTOMER_SET, "Id", ODataQuery()),
    "company": (COMPANY_SET, "Id", ODataQuery()),
}

HEADER_EVENT_TYPE = "norce-event-type"
HEADER_RECEIVED_AT = "received-at"
HEADER_EVENT_COUNT = "norce-event-count"
HEADER_DELETED = "norce-deleted"


@dataclass(frozen=True)
class TargetSpec:
    target: str
    kind: str
    topic: str
    mapper: Mapper


def target_specs(config: SyncConfig, prefix: str = "") -> dict[str, list[TargetSpec]]:
    """Per entity kind, the targets that want it (kinds the enricher cannot feed are
    returned under their own name so the caller can complain about them)."""
    specs: dict[str, list[TargetSpec]] = {}
    for target, kind, mapping in config.target_mappings():
        topic = prefix + config.target_topic(target, kind)
        specs.setdefault(kind, []).append(TargetSpec(target, kind, topic, mapping.mapper))
    return specs


@dataclass(frozen=True)
class ExportContext:
    """What a target hook gets as ``context``: the whole Query document and why."""

    kind: str
    entity_id: str
    document: dict[str, Any]
    event_types: tuple[str, ...]
    received_at: float
    target: str


@dataclass(frozen=True)
class OutRecord:
    target: str
    kind: str
    topic: str
    key: bytes
    value: bytes | None  # None: tombstone (the entity is gone from Norce)
    headers: tuple[tuple[str, bytes], ...]

    @property
    def digest(self) -> str:
        """Identifies the content (not the headers): equal digests, equal records."""
        data = b"\x00tombstone" if self.value is None else self.value
        return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass
class BuildResult:
    records: list[OutRecord] = field(default_factory=list)
    errors: list[tuple[TargetSpec, MappingError]] = field(default_factory=list)


def _headers(
    event_types: Sequence[str], received_at: float, count: int, deleted: bool
) -> tuple[tuple[str, bytes], ...]:
    headers = [
        (HEADER_EVENT_TYPE, ",".join(event_types).encode()),
        (HEADER_RECEIVED_AT, f"{received_at:.3f}".encode()),
        (HEADER_EVENT_COUNT, str(count).encode()),
    ]
    if deleted:
        headers.append((HEADER_DELETED, b"true"))
    return tuple(headers)


def distinct(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def build_records(
    kind: str,
    entity_id: str,
    document: dict[str, Any] | None,
    specs: Sequence[TargetSpec],
    *,
    event_types: Sequence[str],
    received_at: float,
    count: int = 1,
) -> BuildResult:
    """Map ``document`` (None: gone) for each target. A target whose mapping fails is
    reported in ``errors``; the other targets still get their records."""
    result = BuildResult()
    key = entity_id.encode()
    types = distinct(event_types)
    headers = _headers(types, received_at, count, document is None)
    for spec in specs:
        if document is None:
            value = None
        else:
            context = ExportContext(kind, entity_id, document, types, received_at, spec.target)
            try:
                mapped = spec.mapper(document, context=context)
            except MappingError as exc:
                result.errors.append((spec, exc))
                continue
            value = orjson.dumps(mapped, option=orjson.OPT_SORT_KEYS)
        result.records.append(OutRecord(spec.target, kind, spec.topic, key, value, headers))
    return result


def key_value(kind: str, entity_id: str) -> Value:
    """The entity id as its key property's literal (customers: the numeric Id)."""
    if kind in ("customer", "company"):
        return int(entity_id)
    if kind == "sku":
        return entity_id
    raise ValueError(f"cannot look up entities of kind {kind!r}")


def group_filter(kind: str, entity_ids: Sequence[str]) -> ODataQuery:
    """The single lookup's query with ``Key eq a or Key eq b ...`` added."""
    _, prop, query = LOOKUPS[kind]
    return key_filter(query, prop, [key_value(kind, i) for i in entity_ids])


def url_length(base_url: str, kind: str, entity_ids: Sequence[str]) -> int:
    """Length of the request URL as httpx sends it (``quote_plus`` encoding)."""
    entity_set, prop, query = LOOKUPS[kind]
    values = [key_value(kind, i) for i in entity_ids]
    return key_url_length(base_url, entity_set, query, prop, values)


def plan_groups(
    base_url: str, kind: str, entity_ids: Iterable[str], *, group_size: int, max_url: int
) -> list[list[str]]:
    """Distinct ids cut into groups bounded in size and URL length
    (``norce.query.plan_key_groups``, shared with the import path's reference checks)."""
    entity_set, prop, query = LOOKUPS[kind]
    ids = list(dict.fromkeys(entity_ids))
    by_value = {key_value(kind, i): i for i in ids}
    groups = plan_key_groups(
        base_url, entity_set, query, prop, by_value, group_size=group_size, max_url=max_url
    )
    return [[by_value[v] for v in group] for group in groups]


class EntityLookup:
    """Query reads for the export path: bounded concurrency, cached reference data."""

    def __init__(
        self,
        query: QueryClient,
        *,
        concurrency: int = 8,
        reference_ttl: float = 300.0,
        group_size: int = 50,
        max_url: int = 4000,
    ) -> None:
        self.query = query
        self.group_size = group_size
        self.max_url = max_url
        self._limit = asyncio.Semaphore(concurrency)
        self._reference: TtlCache[str, dict[str, dict[str, Any]]] = TtlCache(reference_ttl)
        # ttl 0: no caching of entities (they change), only sharing of lookups in flight
        self._entities: TtlCache[tuple[str, str], dict[str, Any] | None] = TtlCache(0)
        self.lookups = 0  # Query requests for entities (a page of a group is one)
        self.in_flight = 0  # entity requests running now
        self.confirmed_missing = 0  # entities a single lookup confirmed gone

    def plan(self, kind: str, entity_ids: Iterable[str]) -> list[list[str]]:
        base = getattr(self.query, "base_url", "")
        return plan_groups(base, kind, entity_ids, group_size=self.group_size, max_url=self.max_url)

    async def fetch_group(
        self, kind: str, entity_ids: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]:
        """Every id's document in one request (plus its ``@odata.nextLink`` pages); an id
        the answer does not hold maps to None: the entity is gone, as a 404 says."""
        if kind not in LOOKUPS:
            raise ValueError(f"cannot look up entities of kind {kind!r}")
        entity_set, prop, _ = LOOKUPS[kind]
        found: dict[Any, dict[str, Any]] = {}
        async with self._limit:
            self.in_flight += 1
            try:
                pages = self.query.pages(entity_set, group_filter(kind, entity_ids))
                async for page in pages:
                    self.lookups += 1
                    for document in page.value:
                        found.setdefault(document.get(prop), document)
            finally:
                self.in_flight -= 1
        documents = {i: found.get(key_value(kind, i)) for i in entity_ids}
        missing = [i for i, d in documents.items() if d is None]
        if missing:
            # A group answer lacking an entity becomes a tombstone (a delete in every
            # sink): confirm it with the single lookup, whose 404 is unambiguous. A
            # failure there raises (the caller waits out an outage), never deletes.
            confirmed = await asyncio.gather(*(self._single(kind, i) for i in missing))
            documents.update(zip(missing, confirmed, strict=True))
            self.confirmed_missing += sum(d is None for d in confirmed)
        if kind == "sku" and any(d is not None for d in documents.values()):
            heads = await self.price_lists()
            for document in documents.values():
                if document is not None:
                    _attach(document, heads)
        return documents

    async def _single(self, kind: str, entity_id: str) -> dict[str, Any] | None:
        """One entity by key, without price list heads (``fetch_group`` attaches them)."""
        entity_set, _, query = LOOKUPS[kind]
        async with self._limit:
            self.lookups += 1
            return await self.query.get_entity(entity_set, key_value(kind, entity_id), query)

    async def fetch(self, kind: str, entity_id: str) -> dict[str, Any] | None:
        return await self._entities.get_or_load(
            (kind, entity_id), lambda: self._fetch(kind, entity_id)
        )

    async def _fetch(self, kind: str, entity_id: str) -> dict[str, Any] | None:
        if kind == "sku":
            async with self._limit:
                self.lookups += 1
                document = await self.query.get_entity(SKU_SET, entity_id, SKU_QUERY)
            if document is not None:
                await self._attach_price_lists(document)
            return document
        if kind in ("customer", "company"):
            entity_set = LOOKUPS[kind][0]
            async with self._limit:
                self.lookups += 1
                return await self.query.get_entity(entity_set, int(entity_id))
        raise ValueError(f"cannot look up entities of kind {kind!r}")

    async def price_lists(self) -> dict[str, dict[str, Any]]:
        """Price list heads by code (Query's ``Agreement``; cached for the reference TTL)."""
        return await self._reference.get_or_load("price_lists", self._load_price_lists)

    async def _load_price_lists(self) -> dict[str, dict[str, Any]]:
        heads: dict[str, dict[str, Any]] = {}
        async with self._limit:
            async for head in self.query.iterate(PRICE_LIST_SET):
                code = head.get("Agreement")  # Query's name of the price list code
                if code is not None:
                    heads[str(code)] = head
        return heads

    async def _attach_price_lists(self, document: dict[str, Any]) -> None:
        if document.get("PriceLists"):
            _attach(document, await self.price_lists())


def _attach(document: dict[str, Any], heads: dict[str, dict[str, Any]]) -> None:
    for row in document.get("PriceLists") or ():
        if isinstance(row, dict):
            row["PriceList"] = heads.get(str(row.get("PriceListCode")))

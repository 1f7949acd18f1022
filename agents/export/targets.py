"""The export path's pure parts: Query lookups of an entity and its mapping per target.

``EntityLookup.fetch(kind, id)`` reads one entity from Query (``None`` when Query answers
404) and attaches cached reference data. ``build_records`` maps that document with every
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
from norce.odata import ODataQuery, eq
from norce.query import QueryClient

SKU_SET = "Products/ProductSkus"
CUSTOMER_SET = "Customers/Customers"
PRICE_LIST_SET = "Application/ClientPriceLists"
SKU_QUERY = (
    ODataQuery()
    .expand("PriceLists", filter=eq("IsActive", True))
    .expand("OnHands", filter=eq("IsActive", True))
)
SUPPORTED_KINDS = ("sku", "customer")

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


class EntityLookup:
    """Query reads for the export path: bounded concurrency, cached reference data."""

    def __init__(
        self,
        query: QueryClient,
        *,
        concurrency: int = 8,
        reference_ttl: float = 300.0,
    ) -> None:
        self.query = query
        self._limit = asyncio.Semaphore(concurrency)
        self._reference: TtlCache[str, dict[str, dict[str, Any]]] = TtlCache(reference_ttl)
        # ttl 0: no caching of entities (they change), only sharing of lookups in flight
        self._entities: TtlCache[tuple[str, str], dict[str, Any] | None] = TtlCache(0)
        self.lookups = 0

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
        if kind == "customer":
            async with self._limit:
                self.lookups += 1
                return await self.query.get_entity(CUSTOMER_SET, int(entity_id))
        raise ValueError(f"cannot look up entities of kind {kind!r}")

    async def price_lists(self) -> dict[str, dict[str, Any]]:
        """Price list heads by PriceListCode (cached for the reference TTL)."""
        return await self._reference.get_or_load("price_lists", self._load_price_lists)

    async def _load_price_lists(self) -> dict[str, dict[str, Any]]:
        heads: dict[str, dict[str, Any]] = {}
        async with self._limit:
            async for head in self.query.iterate(PRICE_LIST_SET):
                code = head.get("PriceListCode")
                if code is not None:
                    heads[str(code)] = head
        return heads

    async def _attach_price_lists(self, document: dict[str, Any]) -> None:
        rows = document.get("PriceLists")
        if not rows:
            return
        heads = await self.price_lists()
        for row in rows:
            if isinstance(row, dict):
                row["PriceList"] = heads.get(str(row.get("PriceListCode")))

"""Norce's own rules for "does Norce hold what the source says", as pure functions.

For one (source, kind) the comparison covers only the fields the source owns (its
``*FieldsThatAreSet`` list), and a source value Norce would not write is not expected in
Norce: a null or 0 price never overwrites (norce-api.md, Connect), and a row lacking a
mandatory price field (``IgnoreSkuPriceListFieldsWhenEmpty``) is ignored whole. Such
items are counted apart ("unwritable"): no delta can fix them, only the source can.

Each item lands in exactly one class:

- ``matching``: every compared field equal (a source-deleted item Norce lacks or holds
  inactive also matches: there is nothing to deactivate);
- ``different``: at least one owned, writable field differs (by field, with examples);
- ``unwritable``: only values Norce would not write differ or cannot be compared;
- ``pending``: different or missing, but a delta is already queued for the key;
- ``waiting_reference``: in the state, not in Norce, and held back because what it refers
  to (its SKU, its price list) is not in Norce either (``agents.imports.references``):
  no repair can help until that exists;
- ``missing``: in the state, not in Norce;
- ``absent``: active in Norce, not in the state (``would_deactivate`` of them lie in the
  scope a full import covers); ``absent_inactive``: the same, already inactive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.config.mapping import MappingError, norce_key
from agents.config.sync_config import InputBinding
from agents.imports.price_values import PRICE_VALUES
from agents.imports.projection import State
from norce.fields import CustomerField, ProductField, SkuField, SkuOnhandField, SkuPriceListField
from norce.odata import ODataQuery

CLASSES = (
    "matching",
    "different",
    "unwritable",
    "pending",
    "waiting_reference",
    "missing",
    "absent",
)
EXAMPLES_MAX = 5  # per field and per class: enough to look at, bounded memory
ROW_IGNORED = "(row ignored: mandatory field empty)"
# Products and SKUs have no IsActive field code (norce-api.md): a delta cannot deactivate
# them, only a full import does (it inactivates what it lacks).
FULL_IMPORT_ONLY = "IsActive (a full import deactivates)"
ROW_REJECTED = "(row rejected: {} is not nullable)"

_STRUCTURED = "a list or object: Query's shape of it is not specified (norce-api.md)"
_ENUM = "an enum Query may answer as a code or a name"
_OTHER = "not a plain value of Query's rows"
_ACTION = "an instruction, not a value"


@dataclass(frozen=True)
class QuerySpec:
    """Where Query holds a kind's items and how its names differ from Connect's."""

    entity_set: str
    codes: Mapping[int, str]  # the header list's field codes -> names
    header_list: str
    comparable: frozenset[str]  # owned fields Query exposes as plain values
    renames: Mapping[str, str] = field(default_factory=dict)  # Query name -> Connect name
    # What FullFile deactivation covers: the fields naming a scope (price: its price list,
    # stock: its warehouse and location); () the whole set (products); None no FullFile.
    scope: tuple[str, ...] | None = None
    nested: str | None = None  # navigation holding the items (stock: a SKU's OnHands)
    dates: frozenset[str] = frozenset()  # compared as points in time, not as text
    required: frozenset[str] = frozenset()  # not nullable: a null rejects the row
    why_not: Mapping[str, str] = field(default_factory=dict)  # owned, not comparable: why
    full_import_only: bool = False  # no IsActive field code (products and SKUs)

    def query_name(self, name: str) -> str:
        for query, connect in self.renames.items():
            if connect == name:
                return query
        return name


def _codes(enum: Any) -> dict[int, str]:
    return {f.value: f.name for f in enum}


SPECS: dict[str, QuerySpec] = {
    "price": QuerySpec(
        "Products/ProductSkuPriceLists",
        _codes(SkuPriceListField),
        "SkuPriceListFieldsThatAreSet",
        frozenset({*PRICE_VALUES, "IsPriceDiscountable", "IsActive"}),
        # Query's price rows say QtyBreak where Connect says QuantityBreak.
        renames={"QtyBreak": "QuantityBreak"},
        scope=("PriceListCode",),
        why_not={
            "PriceRule": "a rule, not a value: Query holds its result",
            "IsPriceDiscountableCreateOnly": "create-only: Norce keeps the first value",
            "FullfileResetInheritance": _ACTION,
        },
    ),
    # Query has no flat set of stock rows: a SKU's OnHands, paged by SKU and flattened.
    "stock": QuerySpec(
        "Products/ProductSkus",
        _codes(SkuOnhandField),
        "SkuOnhandFieldsThatAreSet",
        frozenset(
            {"OnhandValue", "IncomingValue", "NextDeliveryDate", "LeadTimeDayCount"}
            | {"MinimumValue", "MaximumValue", "IsActive"}
        ),
        scope=("WarehouseCode", "LocationCode"),
        nested="OnHands",
        dates=frozenset({"NextDeliveryDate"}),
        required=frozenset({"OnhandValue"}),
    ),
    "customer": QuerySpec(
        "Customers/Customers",
        _codes(CustomerField),
        "CustomerFieldsThatAreSet",
        frozenset({"EmailAddress", "FirstName", "LastName", "PhoneNumber", "IsActive", "CrmId"}),
        why_not={"Code": "the key"},
    ),
    # A product binding keyed by Code compares the product's own plain fields...
    "product": QuerySpec(
        "Products/Products",
        _codes(ProductField),
        "ProductFieldsThatAreSet",
        frozenset({"ManufacturerCode", "ManufacturerName", "Alias"}),
        scope=(),
        why_not={
            "Code": "the key",
            "Variants": "SKUs: compared by a binding keyed per SKU (PartNo)",
        },
        full_import_only=True,
    ),
    # ... one keyed per SKU (key field ``Variants.N.Skus.M.PartNo``) the SKU's.
    "sku": QuerySpec(
        "Products/ProductSkus",
        _codes(SkuField),
        "SkuFieldsThatAreSet",
        frozenset(
            {"IntegrationPartNo", "EanCode", "IsBuyable", "ActualWeight", "StandardPrice"}
            | {"VatRate", "StartDate", "StopDate"}
        ),
        scope=(),
        dates=frozenset({"StartDate", "StopDate"}),
        why_not={
            "Status": _ENUM,
            "Type": _ENUM,
            "PartNoCreateWhenMissing": _ACTION,
        },
        full_import_only=True,
    ),
}


def _path(text: str) -> tuple[str | int, ...]:
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


def _at(row: Mapping[str, Any], path: tuple[str | int, ...]) -> Mapping[str, Any]:
    node: Any = row
    for token in path:
        if isinstance(token, int):
            node = node[token] if isinstance(node, list) and token < len(node) else None
        else:
            node = node.get(token) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def canonical_time(value: Any) -> Any:
    """A date or datetime as one text (``2026-01-02`` is ``2026-01-02T00:00:00``)."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).isoformat()
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class Plan:
    """What to compare for one binding."""

    binding: InputBinding
    spec: QuerySpec
    fields: tuple[str, ...]  # owned, comparable Connect names
    price_values: frozenset[str]  # of them, those where null/0 is not written
    mandatory: tuple[str, ...]
    key_names: tuple[str, ...]  # the Norce key as Query's flat row names it
    view: tuple[str | int, ...] = ()  # where the compared fields sit in a state row
    not_compared: Mapping[str, str] = field(default_factory=dict)  # owned field -> why

    def key(self, row: Mapping[str, Any]) -> str:
        """The Norce key of a Query row (as the state's, ``mapping.norce_key``)."""
        try:
            return norce_key(self.binding.kind, row, self.key_names)
        except MappingError:  # e.g. an empty LocationCode: no state key can equal it
            return "|".join("" if row.get(n) is None else str(row.get(n)) for n in self.key_names)

    @property
    def select(self) -> list[str]:
        """The items' ``$select``: key fields, owned fields, IsActive and the scope."""
        names = [*self.key_names, *self.fields, "IsActive", *(self.spec.scope or ())]
        if self.spec.nested:  # the parent's key is not a field of the nested rows
            names = [n for n in names if n != "PartNo"]
        return [self.spec.query_name(n) for n in dict.fromkeys(names)]

    @property
    def query(self) -> ODataQuery:
        if self.spec.nested is None:
            return ODataQuery().select(*self.select)
        return ODataQuery().select("PartNo").expand(self.spec.nested, select=self.select)

    def items(self, page: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        """A page's items with Connect's names (a SKU's OnHands flattened with its PartNo)."""
        nested = self.spec.nested
        for entity in page:
            if nested is None:
                yield self.norce_row(entity)
                continue
            if f"{nested}@odata.nextLink" in entity:
                # Paged nested rows would be missed silently: refuse instead.
                raise ValueError(f"Query paged {nested} of {entity.get('PartNo')}")
            for row in entity.get(nested) or ():
                yield self.norce_row({"PartNo": entity.get("PartNo"), **row})

    def norce_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A Query row with Connect's names (and dates as one text)."""
        out = {self.spec.renames.get(k, k): v for k, v in row.items()}
        for name in self.spec.dates:
            if name in out:
                out[name] = canonical_time(out[name])
        return out

    def scope_value(self, row: Mapping[str, Any]) -> tuple[Any, ...] | None:
        if self.spec.scope is None:
            return None
        return tuple(row.get(n) for n in self.spec.scope)


def _names(spec_codes: Mapping[int, str], owned: Iterable[int | str]) -> list[str]:
    return [spec_codes.get(f, str(f)) if isinstance(f, int) else f for f in owned]


_LISTS = frozenset(
    {"Cultures", "Categories", "MainImage", "AdditionalImages", "Family", "ProductParametrics"}
    | {"Assortment", "Infos", "InvoiceAddress", "DeliveryAddresses", "PriceLists", "Companies"}
)


def _why(spec: QuerySpec, name: str) -> str:
    return spec.why_not.get(name) or (_STRUCTURED if name in _LISTS else _OTHER)


def plan_for(binding: InputBinding) -> Plan:
    """Raises ``ValueError`` for a binding none of whose owned fields Query can compare."""
    kind = binding.kind
    key_paths = [_path(k) for k in binding.norce_key_fields]
    view: tuple[str | int, ...] = ()
    if kind == "product" and "Skus" in key_paths[0]:
        kind, view = "sku", key_paths[0][:-1]  # keyed per SKU: compare the SKU
    spec = SPECS.get(kind)
    if spec is None:
        raise ValueError(f"kind {binding.kind} not supported")
    names = _names(spec.codes, binding.owned_fields.get(spec.header_list, []))
    fields = tuple(n for n in names if n in spec.comparable)
    not_compared = {n: _why(spec, n) for n in names if n not in fields}
    for list_name, owned in binding.owned_fields.items():
        if list_name != spec.header_list:
            why = f"{list_name} is not compared for a {binding.kind} keyed by {key_paths[0][-1]}"
            if "Culture" in list_name:
                why = f"{list_name}: culture rows, {_STRUCTURED}"
            not_compared |= {f"{list_name}.{n}": why for n in map(str, owned)}
    if not fields:
        raise ValueError(
            f"no owned field of {binding.source}/{binding.kind} can be compared in Query: "
            + "; ".join(f"{n}: {why}" for n, why in not_compared.items())
        )
    mandatory = _names(spec.codes, binding.mandatory_price_fields)
    return Plan(
        binding=binding,
        spec=spec,
        fields=fields,
        price_values=frozenset(fields) & PRICE_VALUES if kind == "price" else frozenset(),
        mandatory=tuple(m for m in mandatory if m),
        key_names=tuple(str(p[-1]) for p in key_paths),
        view=view,
        not_compared=not_compared,
    )


@dataclass(frozen=True, slots=True)
class Expected:
    """What Norce should hold for one state value, by Norce's rules."""

    values: dict[str, Any]  # field -> value Norce should hold
    unwritable: dict[str, Any]  # field -> the source value Norce will not write
    deleted: bool
    pending: bool
    scope: Any = None

    def pack(self, partition: int, state_key: str) -> list[Any]:
        return [partition, state_key, self.values, self.unwritable, self.deleted, self.pending]

    @classmethod
    def unpack(cls, packed: list[Any]) -> tuple[int, str, Expected]:
        partition, state_key, values, unwritable, deleted, pending = packed
        return partition, state_key, cls(values, unwritable, deleted, pending)


def expect(plan: Plan, value: Mapping[str, Any]) -> Expected:
    """The owned values Norce should hold for a projection value (``agents.imports.
    projection``)."""
    state = State.of(value)
    top = state.row
    row = _at(top, plan.view) if plan.view else top
    deleted = state.deleted or top.get("IsActive") is False
    pending = state.pending
    scope = plan.scope_value(row)
    spec = plan.spec
    if deleted:
        # A deactivation writes IsActive only; the other values stay as they were.
        if spec.full_import_only:  # no IsActive to write: a delta cannot deactivate it
            return Expected({}, {FULL_IMPORT_ONLY: False}, True, pending, scope)
        values = {"IsActive": False} if "IsActive" in plan.fields else {}
        return Expected(values, {}, True, pending, scope)
    if any(row.get(m) is None for m in plan.mandatory):
        return Expected({}, {ROW_IGNORED: None}, False, pending, scope)
    rejected = [n for n in plan.fields if n in spec.required and row.get(n) is None]
    if rejected:  # Norce's validation refuses the row: nothing of it is written
        return Expected({}, {ROW_REJECTED.format(rejected[0]): None}, False, pending, scope)
    values: dict[str, Any] = {}
    unwritable: dict[str, Any] = {}
    for name in plan.fields:
        v = row.get(name)
        if name in plan.price_values and (v is None or v == 0):
            unwritable[name] = v
        elif name == "IsActive" and v is None:
            continue  # IsActive null never overwrites
        else:
            values[name] = canonical_time(v) if name in spec.dates else v
    if spec.full_import_only:
        values["IsActive"] = True  # importing a product or SKU makes it active
    return Expected(values, unwritable, False, pending, scope)


def same(a: Any, b: Any) -> bool:
    """Equal as Norce stores them: numbers to 4 decimals, bools never equal numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=0, abs_tol=5e-5)
    return bool(a == b)


def differences(expected: Expected, norce: Mapping[str, Any]) -> list[str]:
    """The owned fields whose Norce value is not the expected one."""
    return [n for n, v in expected.values.items() if not same(v, norce.get(n))]


@dataclass
class Tally:
    """Counts per class, by field, and a few examples; bounded whatever the item count."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    by_field: dict[str, int] = field(default_factory=dict)
    unwritable_by_field: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    would_deactivate: int = 0
    absent_inactive: int = 0
    state_items: int = 0
    norce_items: int = 0

    def _example(self, bucket: str, example: dict[str, Any]) -> None:
        shown = self.examples.setdefault(bucket, [])
        if len(shown) < EXAMPLES_MAX:
            shown.append(example)

    def compared(self, key: str, expected: Expected, norce: Mapping[str, Any]) -> str:
        """Classify an item both sides hold; returns its class."""
        if expected.deleted and norce.get("IsActive") is False:
            self.counts["matching"] += 1
            return "matching"
        diff = differences(expected, norce)
        if not diff and not expected.unwritable:
            self.counts["matching"] += 1
            return "matching"
        if expected.pending:
            self.counts["pending"] += 1
            self._example("pending", {"key": key, "fields": diff or sorted(expected.unwritable)})
            return "pending"
        for name, value in expected.unwritable.items():
            self.unwritable_by_field[name] = self.unwritable_by_field.get(name, 0) + 1
            shown = norce.get("IsActive") if name == FULL_IMPORT_ONLY else norce.get(name)
            self._example(f"unwritable:{name}", {"key": key, "state": value, "norce": shown})
        if diff:
            self.counts["different"] += 1
            for name in diff:
                self.by_field[name] = self.by_field.get(name, 0) + 1
                self._example(
                    f"different:{name}",
                    {"key": key, "state": expected.values[name], "norce": norce.get(name)},
                )
            return "different"
        self.counts["unwritable"] += 1
        return "unwritable"

    def missing(self, key: str, expected: Expected, waiting_for: str | None = None) -> str:
        """Classify an item only the state holds; ``waiting_for`` is why it is held back
        (a reference not in Norce), if it is."""
        if expected.deleted:
            self.counts["matching"] += 1  # deleted at the source, never in Norce: fine
            return "matching"
        if waiting_for is not None:
            self.counts["waiting_reference"] += 1
            self._example("waiting_reference", {"key": key, "reason": waiting_for})
            return "waiting_reference"
        if expected.pending:
            self.counts["pending"] += 1
            self._example("pending", {"key": key, "fields": ["(missing)"]})
            return "pending"
        self.counts["missing"] += 1
        self._example("missing", {"key": key})
        return "missing"

    def absent(self, key: str, norce: Mapping[str, Any], in_scope: bool) -> str:
        """Classify an item only Norce holds."""
        if norce.get("IsActive") is False:
            self.absent_inactive += 1
            return "absent_inactive"
        self.counts["absent"] += 1
        if in_scope:
            self.would_deactivate += 1
        self._example("absent", {"key": key, "in_full_import_scope": in_scope})
        return "absent"

    def summary(self) -> dict[str, Any]:
        return {
            **self.counts,
            "different_by_field": dict(sorted(self.by_field.items())),
            "unwritable_by_field": dict(sorted(self.unwritable_by_field.items())),
            "would_deactivate": self.would_deactivate,
            "absent_inactive": self.absent_inactive,
            "state_items": self.state_items,
            "norce_items": self.norce_items,
            "examples": self.examples,
        }


REPAIRABLE = frozenset({"different", "missing"})


def scope_of(plan: Plan, norce: Mapping[str, Any], scopes: Iterable[Any]) -> bool:
    """Whether a full import of the state would deactivate this Norce row: FullFile
    deactivates only within the price lists (stock: warehouse/locations) the file holds,
    products and SKUs it lacks whatever they are; customers have no FullFile."""
    scope = plan.scope_value(norce)
    return scope is not None and scope in scopes

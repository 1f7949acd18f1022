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
- ``missing``: in the state, not in Norce;
- ``absent``: active in Norce, not in the state (``would_deactivate`` of them lie in the
  scope a full import covers); ``absent_inactive``: the same, already inactive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.config.mapping import norce_key
from agents.config.sync_config import InputBinding
from agents.imports.price_values import PRICE_VALUES
from norce.fields import CustomerField, SkuPriceListField

CLASSES = ("matching", "different", "unwritable", "pending", "missing", "absent")
EXAMPLES_MAX = 5  # per field and per class: enough to look at, bounded memory
ROW_IGNORED = "(row ignored: mandatory field empty)"


@dataclass(frozen=True)
class QuerySpec:
    """Where Query holds a kind's items and how its names differ from Connect's."""

    entity_set: str
    codes: Mapping[int, str]  # the header list's field codes -> names
    header_list: str
    comparable: frozenset[str]  # owned fields Query exposes as plain values
    renames: Mapping[str, str] = field(default_factory=dict)  # Query name -> Connect name
    scope: str | None = None  # what FullFile deactivation covers (price: the price list)

    def query_name(self, name: str) -> str:
        for query, connect in self.renames.items():
            if connect == name:
                return query
        return name


SPECS: dict[str, QuerySpec] = {
    "price": QuerySpec(
        "Products/ProductSkuPriceLists",
        {f.value: f.name for f in SkuPriceListField},
        "SkuPriceListFieldsThatAreSet",
        frozenset({*PRICE_VALUES, "IsPriceDiscountable", "IsActive"}),
        # Query's price rows say QtyBreak where Connect says QuantityBreak.
        renames={"QtyBreak": "QuantityBreak"},
        scope="PriceListCode",
    ),
    "customer": QuerySpec(
        "Customers/Customers",
        {f.value: f.name for f in CustomerField},
        "CustomerFieldsThatAreSet",
        frozenset({"EmailAddress", "FirstName", "LastName", "PhoneNumber", "IsActive", "CrmId"}),
    ),
}
# Why not stock and product: Query has no flat set of stock rows (only a SKU's OnHands),
# and product fields are nested per variant and SKU; see README, "Reconcile".
UNSUPPORTED = {
    "stock": "Query has no flat set of stock rows (only Products/ProductSkus' OnHands)",
    "product": "product fields are nested per variant and SKU in Query",
}


@dataclass(frozen=True)
class Plan:
    """What to compare for one binding."""

    binding: InputBinding
    spec: QuerySpec
    fields: tuple[str, ...]  # owned, comparable Connect names
    price_values: frozenset[str]  # of them, those where null/0 is not written
    mandatory: tuple[str, ...]
    key: Callable[[Mapping[str, Any]], str]

    @property
    def select(self) -> list[str]:
        """Query's ``$select``: key fields, owned fields, IsActive and the scope field."""
        names = [*self.binding.norce_key_fields, *self.fields, "IsActive"]
        if self.spec.scope:
            names.append(self.spec.scope)
        return [self.spec.query_name(n) for n in dict.fromkeys(names)]

    def norce_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A Query row with Connect's names."""
        if not self.spec.renames:
            return dict(row)
        return {self.spec.renames.get(k, k): v for k, v in row.items()}


def plan_for(binding: InputBinding) -> Plan:
    """Raises ``ValueError`` for kinds Query cannot be compared on."""
    spec = SPECS.get(binding.kind)
    if spec is None:
        raise ValueError(UNSUPPORTED.get(binding.kind, f"kind {binding.kind} not supported"))
    owned = binding.owned_fields.get(spec.header_list, [])
    names = [spec.codes.get(f) if isinstance(f, int) else f for f in owned]
    fields = tuple(n for n in names if n in spec.comparable)
    mandatory = [
        spec.codes.get(f) if isinstance(f, int) else f for f in binding.mandatory_price_fields
    ]
    key_fields = binding.norce_key_fields
    return Plan(
        binding=binding,
        spec=spec,
        fields=fields,
        price_values=frozenset(fields) & PRICE_VALUES if binding.kind == "price" else frozenset(),
        mandatory=tuple(m for m in mandatory if m),
        key=lambda row: norce_key(binding.kind, row, key_fields),
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
    projection``): {"row": ..., "d": deleted, "p": pending since}."""
    row = value["row"]
    deleted = bool(value.get("d")) or row.get("IsActive") is False
    pending = value.get("p") is not None
    scope = row.get(plan.spec.scope) if plan.spec.scope else None
    if deleted:
        # A deactivation writes IsActive only; the other values stay as they were.
        values = {"IsActive": False} if "IsActive" in plan.fields else {}
        return Expected(values, {}, True, pending, scope)
    if any(row.get(m) is None for m in plan.mandatory):
        return Expected({}, {ROW_IGNORED: None}, False, pending, scope)
    values: dict[str, Any] = {}
    unwritable: dict[str, Any] = {}
    for name in plan.fields:
        v = row.get(name)
        if name in plan.price_values and (v is None or v == 0):
            unwritable[name] = v
        elif name == "IsActive" and v is None:
            continue  # IsActive null never overwrites
        else:
            values[name] = v
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
            self._example(
                f"unwritable:{name}", {"key": key, "state": value, "norce": norce.get(name)}
            )
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

    def missing(self, key: str, expected: Expected) -> str:
        """Classify an item only the state holds."""
        if expected.deleted:
            self.counts["matching"] += 1  # deleted at the source, never in Norce: fine
            return "matching"
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
    """Whether a full import of the state would touch this Norce row (FullFile
    deactivates only within the price lists the file holds; customers have no
    FullFile)."""
    if plan.spec.scope is None:
        return False
    return norce.get(plan.spec.scope) in scopes

"""Applying accepted rows to the state with Norce's write semantics.

- Field selection: when the header has the kind's ``*FieldsThatAreSet`` list, only the
  listed fields are written; a listed field the item lacks is written as null (as
  Norce's deserializer would). When the list is absent, every field the item gives is
  written. Key fields are always written; fields without a field code (price
  ``CurrencyCode``, ``PriceRuleValue`` which follows ``PriceRule``) are written when given.
- ``IsActive: null`` never overwrites (null means "not set" for this nullable flag).
- Price rows: a price value (PriceSale, CostPurchase, CostUnit, PriceRecommended,
  PricePrevious, PriceCatalog) that is null or 0 never overwrites (the vendor's
  SkuPriceList schema says so for every price field).
- ``IgnoreSkuPriceListFieldsWhenEmpty`` lists the mandatory price fields: a row missing
  one of them (absent or null) is ignored whole (``Writer.apply`` returns False).
- Products and SKUs have no IsActive field code: importing one makes it active.
  ``Variants`` are written when code 4 is listed (or no list); each SKU then follows
  ``SkuFieldsThatAreSet``.
- ``FullFile``: stock rows of the (WarehouseCode, LocationCode) pairs in the import that
  it lacks, price rows of the price lists in the import that it lacks, supplier rows of
  the suppliers in it that it lacks, and products not imported (with their SKUs) get
  ``IsActive: false``. Nothing else is touched. Items are never re-activated implicitly
  (prices and stock: send IsActive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from norce_simulator.header import SKU_PRICE_LIST_FIELDS, ConnectHeader
from norce_simulator.kinds import KINDS, ItemError, key_of, prepare
from norce_simulator.state import Row, SimState

# Called with (kind, key, row) for every item whose values changed.
Notify = Callable[[str, str, Row], None]

_PRICE_DEFAULTS: Row = {
    "PriceSale": None, "CostPurchase": None, "CostUnit": None, "PriceRecommended": None,
    "PricePrevious": None, "PriceCatalog": None, "IsPriceDiscountable": None,
    "CurrencyCode": None, "IsActive": True, "PriceRule": None, "PriceRuleValue": None,
}  # fmt: skip
_STOCK_DEFAULTS: Row = {
    "OnhandValue": None, "IncomingValue": None, "NextDeliveryDate": None,
    "LeadTimeDayCount": None, "MinimumValue": None, "MaximumValue": None, "IsActive": True,
    "Infos": None,
}  # fmt: skip
_CODELESS = {"price": {"CurrencyCode"}, "stock": set()}


@dataclass
class WriteResult:
    inserts: int = 0
    updates: int = 0
    imported_keys: set[str] = field(default_factory=set)
    scopes: set[Any] = field(default_factory=set)  # what FullFile deactivation covers
    imported_skus: set[str] = field(default_factory=set)
    variants_written: bool = False


_PRICE_VALUES = frozenset(
    ("PriceSale", "CostPurchase", "CostUnit", "PriceRecommended", "PricePrevious", "PriceCatalog")
)


def _select(kind: str, row: Row, header: ConnectHeader) -> dict[str, Any]:
    spec = KINDS[kind]
    selected = header.fields(spec.field_list) if spec.field_list else None
    keys = set(spec.key_fields)
    if selected is None:
        values = {k: v for k, v in row.items() if k not in keys}
    else:
        names = set(selected)
        if "PriceRule" in names:
            names.add("PriceRuleValue")
        names |= _CODELESS.get(kind, set()) & row.keys()
        values = {k: row.get(k) for k in names if k not in keys}
    if kind == "price":
        values = {
            k: v for k, v in values.items() if k not in _PRICE_VALUES or (v is not None and v != 0)
        }
    if values.get("IsActive", True) is None:
        del values["IsActive"]
    return values


class Writer:
    def __init__(self, state: SimState, notify: Notify | None = None) -> None:
        self.state = state
        self.notify = notify

    def _write(
        self, kind: str, key: str, values: Row, job_id: int | None, defaults: Row, res: WriteResult
    ) -> None:
        inserted, changed = self.state.write(kind, key, values, job_id=job_id, defaults=defaults)
        if inserted:
            res.inserts += 1
        else:
            res.updates += 1
        if changed and self.notify:
            self.notify(kind, key, self.state.items[kind][key])

    def apply(
        self, kind: str, row: Row, header: ConnectHeader, job_id: int | None, res: WriteResult
    ) -> bool:
        """Write one row; False when Norce ignores it whole (a mandatory field is empty)."""
        if kind == "price" and header.IgnoreSkuPriceListFieldsWhenEmpty:
            names = [SKU_PRICE_LIST_FIELDS[c] for c in header.IgnoreSkuPriceListFieldsWhenEmpty]
            if any(row.get(name) is None for name in names if name):
                return False
        key = key_of(kind, row)
        res.imported_keys.add(key)
        keyvals = {f: row[f] for f in KINDS[kind].key_fields}
        if kind == "price":
            values = _select(kind, row, header)
            # PriceListId is how Query and webhooks name the list beside its code.
            pid = self.state.pricelist_id(row["PriceListCode"])
            defaults = {**keyvals, "PriceListId": pid, **_PRICE_DEFAULTS}
            self._write(kind, key, values, job_id, defaults, res)
            res.scopes.add(row["PriceListCode"])
        elif kind == "stock":
            values = _select(kind, row, header)
            self._write(kind, key, values, job_id, {**keyvals, **_STOCK_DEFAULTS}, res)
            res.scopes.add((row["WarehouseCode"], row["LocationCode"]))
        elif kind == "product":
            self._product(row, header, job_id, res)
        elif kind == "customer":
            values = _select(kind, row, header)
            defaults = {"Id": None, **keyvals, "IsActive": True}
            if key not in self.state.items[kind]:
                defaults["Id"] = self.state.next_customer_id()
            self._write(kind, key, values, job_id, defaults, res)
        elif kind == "pricelist":
            values = _select(kind, row, header)
            code = row["PriceListCode"]
            defaults = {"Id": self.state.pricelist_id(code), **keyvals, "IsActive": True}
            self._write(kind, key, values, job_id, defaults, res)
        elif kind == "company":
            self._company(row, header, job_id, res)
        elif kind == "supplier":
            values = _select(kind, row, header)
            self._write(kind, key, values, job_id, {**keyvals, "IsActive": True}, res)
            res.scopes.add(row["SupplierId"])
        else:
            raise ValueError(f"kind {kind!r} is not imported directly")
        return True

    def _product(
        self, row: Row, header: ConnectHeader, job_id: int | None, res: WriteResult
    ) -> None:
        code = row["Code"]
        selected = header.fields("ProductFieldsThatAreSet")
        values = _select("product", {k: v for k, v in row.items() if k != "Variants"}, header)
        values.pop("Variants", None)
        values["IsActive"] = True
        write_variants = "Variants" in row and (selected is None or "Variants" in selected)
        if write_variants:
            res.variants_written = True
            variants = row["Variants"] or []
            values["Variants"] = [
                {**{k: v for k, v in var.items() if k != "Skus"},
                 "PartNos": [sku["PartNo"] for sku in var.get("Skus", [])]}
                for var in variants
            ]  # fmt: skip
        self._write("product", code, values, job_id, {"Code": code, "IsActive": True}, res)
        if not write_variants:
            return
        sku_cultures = header.SkuCultureFieldsThatAreSet is None or bool(
            header.SkuCultureFieldsThatAreSet
        )
        for var in row["Variants"] or []:
            for sku in var.get("Skus", []):
                part_no = sku["PartNo"]
                res.imported_skus.add(part_no)
                svalues = _select("sku", {k: v for k, v in sku.items() if k != "Cultures"}, header)
                if sku_cultures and "Cultures" in sku:
                    svalues["Cultures"] = sku["Cultures"]
                svalues.update(
                    ProductCode=code,
                    ManufacturerPartNo=var.get("ManufacturerPartNo"),
                    IsActive=True,
                )
                defaults = {"PartNo": part_no, "ProductCode": code, "IsActive": True}
                sub = WriteResult()
                self._write("sku", part_no, svalues, job_id, defaults, sub)

    def _company(
        self, row: Row, header: ConnectHeader, job_id: int | None, res: WriteResult
    ) -> None:
        """Match on Id, then Code, then OrganizationNo (not with SearchOnlyByCode); a new
        company needs Code, Name and OrganizationNo. ``Customers`` are relations by
        customer code: the row's IsCustomerListDelta false (the default) deactivates
        those it leaves out, true only adds or updates."""
        table = self.state.items["company"]
        key = None
        if row.get("Id") is not None:
            key = next((k for k, r in table.items() if r.get("Id") == row["Id"]), None)
        if key is None and row["Code"] in table:
            key = row["Code"]
        if key is None and row.get("OrganizationNo") and not row.get("SearchOnlyByCode"):
            org = row["OrganizationNo"]
            key = next((k for k, r in table.items() if r.get("OrganizationNo") == org), None)
        if key is None:
            lacking = [f for f in ("Name", "OrganizationNo") if not row.get(f)]
            if lacking:
                raise ItemError(
                    f"Company '{row['Code']}': a new company needs Code, Name and "
                    f"OrganizationNo ({', '.join(lacking)} missing)"
                )
            key = row["Code"]
        plain = {k: v for k, v in row.items() if k not in ("Customers", "IsCustomerListDelta")}
        values = _select("company", plain, header)
        for name in ("Id", "SearchOnlyByCode", "Customers"):
            values.pop(name, None)
        selected = header.fields("CompanyFieldsThatAreSet")
        if "Customers" in row and (selected is None or "Customers" in selected):
            current = table.get(key, {}).get("Customers") or []
            values["Customers"] = _relations(
                current, row["Customers"] or [], merge=bool(row.get("IsCustomerListDelta"))
            )
        defaults = {"Id": None, "Code": key, "IsActive": True, "Customers": []}
        if key not in table:
            defaults["Id"] = self.state.next_company_id()
        self._write("company", key, values, job_id, defaults, res)

    def deactivate_missing(self, kind: str, res: WriteResult, job_id: int | None) -> int:
        """FullFile: set IsActive false on what the import's scope holds but it lacked."""
        table = self.state.items[kind]
        if kind == "price":
            doomed = [
                k for k, r in table.items()
                if r["PriceListCode"] in res.scopes and k not in res.imported_keys
            ]  # fmt: skip
        elif kind == "stock":
            doomed = [
                k for k, r in table.items()
                if (r["WarehouseCode"], r["LocationCode"]) in res.scopes
                and k not in res.imported_keys
            ]  # fmt: skip
        elif kind == "supplier":
            doomed = [
                k for k, r in table.items()
                if r["SupplierId"] in res.scopes and k not in res.imported_keys
            ]  # fmt: skip
        elif kind == "product":
            doomed = [k for k in table if k not in res.imported_keys]
            gone = set(doomed)
            n = self._deactivate("product", doomed, job_id)
            skus = [
                k for k, r in self.state.items["sku"].items()
                if k not in res.imported_skus
                and (r.get("ProductCode") in gone or res.variants_written)
            ]  # fmt: skip
            return n + self._deactivate("sku", skus, job_id)
        else:
            return 0
        return self._deactivate(kind, doomed, job_id)

    def _deactivate(self, kind: str, keys: Iterable[str], job_id: int | None) -> int:
        n = 0
        for key in keys:
            if self.state.items[kind][key].get("IsActive") is False:
                continue  # already inactive: no write
            self.state.write(kind, key, {"IsActive": False}, job_id=job_id, op="deactivate")
            n += 1
            if self.notify:
                self.notify(kind, key, self.state.items[kind][key])
        return n


def _relations(current: list[Row], given: list[Any], *, merge: bool) -> list[Row]:
    """A company's customer relations after an import row (by customer code)."""
    out = {r["Code"]: dict(r) for r in current}
    named = set()
    for entry in given:
        code = str(entry.get("Code") if isinstance(entry, dict) else entry)
        active = entry.get("IsActive", True) if isinstance(entry, dict) else True
        out[code] = {"Code": code, "IsActive": active is not False}
        named.add(code)
    if not merge:
        for code, relation in out.items():
            if code not in named:
                relation["IsActive"] = False
    return list(out.values())


def seed_items(state: SimState, data: dict[str, list[Row]]) -> dict[str, int]:
    """Seed items per kind (validated like imports, all given fields written)."""
    header = ConnectHeader(AccountId=1)
    writer = Writer(state)
    counts: dict[str, int] = {}
    for kind, rows in data.items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        res = WriteResult()
        for i, raw in enumerate(rows):
            if kind == "sku":  # SKUs alone: write them directly
                row = prepare(kind, raw, i, header)
                vals = {k: v for k, v in row.items() if k != "PartNo"}
                writer._write(
                    "sku",
                    row["PartNo"],
                    vals,
                    None,
                    {"PartNo": row["PartNo"], "IsActive": True},
                    res,
                )
            else:
                writer.apply(kind, prepare(kind, raw, i, header), header, None, res)
        counts[kind] = len(rows)
    return counts


__all__ = ["ItemError", "WriteResult", "Writer", "seed_items"]

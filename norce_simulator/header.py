"""``X-StormConnect-Header``: parsing and validation, and the field codes it may use."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Field codes per list, from norce-api.md. Codes map to the item field they select; a
# code mapped to None is accepted (it exists in Norce) but has no effect here.
SKU_ONHAND_FIELDS: dict[int, str | None] = {
    0: None, 1: None, 2: None,  # key fields (PartNo, WarehouseCode, LocationCode) (inferred)
    3: "OnhandValue", 4: "IncomingValue", 5: "NextDeliveryDate", 6: "LeadTimeDayCount",
    8: "MinimumValue", 9: "MaximumValue", 10: "IsActive", 11: "Infos",
}  # fmt: skip
SKU_PRICE_LIST_FIELDS: dict[int, str | None] = {
    0: None, 1: None, 2: None,  # key fields (inferred)
    3: "PriceSale", 4: "CostPurchase", 5: "CostUnit", 6: "PriceRecommended",
    7: "PricePrevious", 8: "PriceCatalog", 9: "IsPriceDiscountable", 10: "IsActive",
    11: "IsPriceDiscountableCreateOnly", 12: "PriceRule",
    13: None,  # FullfileResetInheritance: clears inherited rule overrides; not modelled
}  # fmt: skip
# Names of the codes (header lists may name fields instead of giving codes).
SKU_PRICE_LIST_NAMES = {"FullfileResetInheritance": 13}
# IgnoreSkuPriceListFieldsWhenEmpty may list these (the mandatory fields of a price row).
MANDATORY_PRICE_CODES = frozenset((3, 4, 5, 6, 7, 8, 10))
SERIALIZATION_TYPES = {"Json": 0, "Xml": 1}
PRODUCT_FIELDS: dict[int, str | None] = {
    0: "ManufacturerCode", 1: "ManufacturerName", 2: "Alias", 3: "Code", 4: "Variants",
    5: "Cultures", 6: "Categories", 7: "MainImage", 8: "AdditionalImages", 9: "Family",
    10: "ProductParametrics", 11: None, 12: None, 13: None, 14: "Assortment",
    15: None, 16: None, 17: None, 18: None, 19: None, 20: None,  # create-only/cleanup
}  # fmt: skip
SKU_FIELDS: dict[int, str | None] = {
    **{code: None for code in range(31)},
    1: "Status", 2: "Type", 3: "IntegrationPartNo", 5: "EanCode", 10: "IsBuyable",
    14: "ActualWeight", 20: "StandardPrice", 21: "VatRate", 23: "StartDate", 24: "StopDate",
}  # fmt: skip
CUSTOMER_FIELDS: dict[int, str | None] = {
    **{code: None for code in range(26)},
    2: "Code", 3: "EmailAddress", 6: "FirstName", 8: "LastName", 9: "PhoneNumber",
    11: "IsActive", 12: "InvoiceAddress", 13: "DeliveryAddresses", 17: "PriceLists",
    19: "Companies", 20: "CrmId",
}  # fmt: skip
PRICE_LIST_FIELDS: dict[int, str | None] = {
    **{code: None for code in range(26)},
    0: "Name", 1: "CurrencyCode", 2: "StartDate", 3: "EndDate", 4: "IsPublic", 5: "IsPrimary",
    6: "TypeCode", 7: "Warehouses", 8: "DefaultPriceRule", 9: "Description",
    11: "DoNotCreateApplicationPriceList", 12: "SalesArea", 13: "DefaultMinMarginPercent",
    14: "LimitToRecPrice", 15: "ParentPriceListCode", 18: "PriceRules",
}  # fmt: skip
COMPANY_FIELDS: dict[int, str | None] = {
    0: "ApplicationKey", 1: "Id", 2: "Code", 3: "OrganizationNo", 4: "Name",
    5: "EmailAddress", 6: "PhoneNumber", 7: "LogoImage", 8: "ParentCompanyCode",
    9: "IsActive", 10: "InvoiceAddress", 11: "DeliveryAddresses", 12: "AdditionalInfo",
    13: "Contacts", 14: "Customers", 15: "DeliveryMethods", 16: "Discounts", 17: "Flags",
    18: "PaymentMethods", 19: "PriceLists", 20: "SearchOnlyByCode", 21: "VatNo",
    22: "PreserveFlags",
}  # fmt: skip
# Lists whose codes are accepted but not modelled field by field (the parent's list
# decides whether the nested objects are written at all).
_OPAQUE = {code: None for code in range(31)}

FIELD_LISTS: dict[str, dict[int, str | None]] = {
    "SkuOnhandFieldsThatAreSet": SKU_ONHAND_FIELDS,
    "SkuPriceListFieldsThatAreSet": SKU_PRICE_LIST_FIELDS,
    "ProductFieldsThatAreSet": PRODUCT_FIELDS,
    "VariantFieldsThatAreSet": _OPAQUE,
    "SkuFieldsThatAreSet": SKU_FIELDS,
    "SkuCultureFieldsThatAreSet": _OPAQUE,
    "ProductCultureFieldsThatAreSet": _OPAQUE,
    "VariantCultureFieldsThatAreSet": _OPAQUE,
    "CustomerFieldsThatAreSet": CUSTOMER_FIELDS,
    "CompanyFieldsThatAreSet": COMPANY_FIELDS,
    "PriceListFieldsThatAreSet": PRICE_LIST_FIELDS,
}


class HeaderError(ValueError):
    """The header is unusable: answered 400 with this message as Description."""


class ConnectHeader(BaseModel):
    """The parsed header. Field lists are None when absent (= write every given field)."""

    model_config = ConfigDict(extra="allow")

    AccountId: int = Field(gt=0)
    FullFile: bool = False
    SerializationType: int = 0
    StorageName: str | None = None
    SupplierId: int | None = None
    # The mandatory price fields: a row missing one of them is ignored whole.
    IgnoreSkuPriceListFieldsWhenEmpty: list[int] | None = None
    IsCustomerListDelta: bool | None = None
    SkuOnhandFieldsThatAreSet: list[int] | None = None
    SkuPriceListFieldsThatAreSet: list[int] | None = None
    ProductFieldsThatAreSet: list[int] | None = None
    VariantFieldsThatAreSet: list[int] | None = None
    SkuFieldsThatAreSet: list[int] | None = None
    SkuCultureFieldsThatAreSet: list[int] | None = None
    ProductCultureFieldsThatAreSet: list[int] | None = None
    VariantCultureFieldsThatAreSet: list[int] | None = None
    CustomerFieldsThatAreSet: list[int] | None = None
    CompanyFieldsThatAreSet: list[int] | None = None
    PriceListFieldsThatAreSet: list[int] | None = None

    def fields(self, list_name: str) -> frozenset[str] | None:
        """Field names selected by a list, or None when the list is absent."""
        codes: list[int] | None = getattr(self, list_name)
        if codes is None:
            return None
        return _field_names(list_name, tuple(codes))


@lru_cache(maxsize=256)
def _field_names(list_name: str, codes: tuple[int, ...]) -> frozenset[str]:
    # Asked for every row of an import (validation, then the job's writes): built once.
    table = FIELD_LISTS[list_name]
    return frozenset(name for code in codes if (name := table[code]) is not None)


def parse_header(raw: str | None) -> ConnectHeader:
    if raw is None or not raw.strip():
        raise HeaderError("X-StormConnect-Header is missing (AccountId is required)")
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HeaderError(f"X-StormConnect-Header is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HeaderError("X-StormConnect-Header must be a JSON object")
    if "AccountId" not in data:
        raise HeaderError("X-StormConnect-Header: AccountId is required")
    unknown_lists = [k for k in data if k.endswith("FieldsThatAreSet") and k not in FIELD_LISTS]
    if unknown_lists:
        raise HeaderError(f"X-StormConnect-Header: unknown field list {unknown_lists[0]}")
    data = _codes_by_name(data)
    try:
        header = ConnectHeader.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise HeaderError(f"X-StormConnect-Header: {where}: {err['msg']}") from None
    if header.SerializationType != 0:
        raise HeaderError("X-StormConnect-Header: only SerializationType 0 (JSON) is supported")
    for name, table in FIELD_LISTS.items():
        for code in getattr(header, name) or ():
            if code not in table:
                raise HeaderError(f"X-StormConnect-Header: unknown code {code} in {name}")
    mandatory = header.IgnoreSkuPriceListFieldsWhenEmpty or []
    for code in mandatory:
        if code not in MANDATORY_PRICE_CODES:
            raise HeaderError(
                f"X-StormConnect-Header: IgnoreSkuPriceListFieldsWhenEmpty: code {code} "
                "cannot be mandatory (3-8, 10)"
            )
    set_ = header.SkuPriceListFieldsThatAreSet
    if mandatory and set_ is not None and not set(mandatory) <= set(set_):
        raise HeaderError(
            "X-StormConnect-Header: IgnoreSkuPriceListFieldsWhenEmpty lists fields that "
            "SkuPriceListFieldsThatAreSet does not"
        )
    return header


def _code_of(table: dict[int, str | None], extra: dict[str, int], value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    names = {name: code for code, name in table.items() if name is not None} | extra
    if value not in names:
        raise HeaderError(f"X-StormConnect-Header: unknown field name {value!r} in {where}")
    return names[value]


def _codes_by_name(data: dict[str, Any]) -> dict[str, Any]:
    """Header enums and field lists given as names, turned into their integer codes."""
    out = dict(data)
    for name, table in FIELD_LISTS.items():
        extra = SKU_PRICE_LIST_NAMES if name == "SkuPriceListFieldsThatAreSet" else {}
        if isinstance(out.get(name), list):
            out[name] = [_code_of(table, extra, v, name) for v in out[name]]
    mandatory = out.get("IgnoreSkuPriceListFieldsWhenEmpty")
    if isinstance(mandatory, bool):
        raise HeaderError(
            "X-StormConnect-Header: IgnoreSkuPriceListFieldsWhenEmpty is an array of field "
            "codes (the mandatory fields), not a flag"
        )
    if isinstance(mandatory, list):
        out["IgnoreSkuPriceListFieldsWhenEmpty"] = [
            _code_of(SKU_PRICE_LIST_FIELDS, {}, v, "IgnoreSkuPriceListFieldsWhenEmpty")
            for v in mandatory
        ]
    serialization = out.get("SerializationType")
    if isinstance(serialization, str):
        if serialization not in SERIALIZATION_TYPES:
            raise HeaderError(f"X-StormConnect-Header: unknown SerializationType {serialization!r}")
        out["SerializationType"] = SERIALIZATION_TYPES[serialization]
    return out

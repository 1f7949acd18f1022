"""Item kinds: their pydantic shapes (from norce-api.md), keys and per-row validation.

Each accepted row is reduced to a plain dict holding exactly the fields the item gave
(``exclude_unset``), because "written or not" later depends on what was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from norce_simulator.header import ConnectHeader
from norce_simulator.price_rows import plain_price_row

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow")


class PriceRow(_Item):
    model_config = ConfigDict(extra="ignore")  # unknown fields are not stored for prices

    PartNo: Text
    PriceListCode: Text
    QuantityBreak: int = Field(default=1, ge=1)
    PriceSale: float | None = Field(default=None, ge=0)
    CostPurchase: float | None = Field(default=None, ge=0)
    CostUnit: float | None = Field(default=None, ge=0)
    PriceRecommended: float | None = Field(default=None, ge=0)
    PricePrevious: float | None = Field(default=None, ge=0)
    PriceCatalog: float | None = Field(default=None, ge=0)
    IsPriceDiscountable: bool | None = None
    IsPriceDiscountableCreateOnly: bool | None = None
    CurrencyCode: str | None = None
    IsActive: bool | None = None
    PriceRule: int | str | None = None
    PriceRuleValue: float | None = None

    @field_validator("QuantityBreak", mode="before")
    @classmethod
    def _default_break(cls, value: Any) -> Any:
        return 1 if value is None else value


class StockRow(_Item):
    model_config = ConfigDict(extra="ignore")

    PartNo: Text
    WarehouseCode: Text
    LocationCode: str = ""
    OnhandValue: float | None = None
    IncomingValue: float | None = None
    NextDeliveryDate: datetime | None = None
    LeadTimeDayCount: int | None = Field(default=None, ge=0)
    MinimumValue: float | None = None
    MaximumValue: float | None = None
    IsActive: bool | None = None
    Infos: list[Any] | None = None

    @field_validator("LocationCode", mode="before")
    @classmethod
    def _no_location(cls, value: Any) -> Any:
        return "" if value is None else value


class SkuCulture(_Item):
    CultureCode: Text
    ErpName: str | None = None


class Sku(_Item):
    PartNo: Text
    Status: int | str | None = None
    Type: int | str | None = None
    IntegrationPartNo: str | None = None
    EanCode: str | None = None
    IsBuyable: bool | None = None
    ActualWeight: float | None = Field(default=None, ge=0)
    StandardPrice: float | None = Field(default=None, ge=0)
    VatRate: float | None = Field(default=None, ge=0)
    StartDate: datetime | None = None
    StopDate: datetime | None = None
    Cultures: list[SkuCulture] | None = None


class Variant(_Item):
    ManufacturerPartNo: str | None = None
    Cultures: list[dict[str, Any]] | None = None
    Skus: list[Sku] = Field(default_factory=list)


class Product(_Item):
    Code: Text
    ManufacturerCode: str | None = None
    ManufacturerName: str | None = None
    Alias: str | None = None
    Cultures: list[dict[str, Any]] | None = None
    Categories: list[Any] | None = None
    MainImage: Any = None
    AdditionalImages: list[Any] | None = None
    Family: Any = None
    ProductParametrics: list[Any] | None = None
    Assortment: Any = None
    Variants: list[Variant] | None = None


class Customer(_Item):
    Code: Text
    EmailAddress: str | None = None
    FirstName: str | None = None
    LastName: str | None = None
    PhoneNumber: str | None = None
    IsActive: bool | None = None
    InvoiceAddress: dict[str, Any] | None = None
    DeliveryAddresses: list[Any] | None = None
    PriceLists: list[Any] | None = None
    Companies: list[Any] | None = None
    IsCompanyListDelta: bool | None = None
    CrmId: str | None = None

    @field_validator("EmailAddress")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError("not an e-mail address")
        return value


class PriceListHead(_Item):
    PriceListCode: Text
    Name: str | None = None
    CurrencyCode: str | None = None
    StartDate: datetime | None = None
    EndDate: datetime | None = None
    IsPublic: bool | None = None
    IsPrimary: bool | None = None
    TypeCode: str | None = None
    Description: str | None = None
    IsActive: bool | None = None


class Company(_Item):
    """``Customer/ImportCompanies``; matched on Id, then Code, then OrganizationNo."""

    Code: Text
    Id: int | None = None
    OrganizationNo: str | None = None
    Name: str | None = None
    EmailAddress: str | None = None
    PhoneNumber: str | None = None
    ParentCompanyCode: str | None = None
    IsActive: bool | None = None
    InvoiceAddress: dict[str, Any] | None = None
    DeliveryAddresses: list[Any] | None = None
    Customers: list[Any] | None = None
    PriceLists: list[Any] | None = None
    VatNo: str | None = None
    SearchOnlyByCode: bool | None = None
    # Per row: true merges the customer relations; false (default) deactivates those the
    # row leaves out.
    IsCustomerListDelta: bool | None = None


class SupplierProduct(_Item):
    SupplierId: int | None = None  # falls back to the header's SupplierId
    PartNo: Text
    IsActive: bool | None = None


@dataclass(frozen=True)
class KindSpec:
    kind: str  # name in the control API and the state
    model: type[BaseModel]
    key_fields: tuple[str, ...]
    field_list: str | None  # X-StormConnect-Header list that selects its fields
    full_file: bool  # does FullFile apply (else 400)
    entity: str  # EntityChanged in webhook bodies


KINDS: dict[str, KindSpec] = {
    "price": KindSpec(
        "price", PriceRow, ("PartNo", "PriceListCode", "QuantityBreak"),
        "SkuPriceListFieldsThatAreSet", True, "tClientProductSkuPriceList",
    ),
    "stock": KindSpec(
        "stock", StockRow, ("PartNo", "WarehouseCode", "LocationCode"),
        "SkuOnhandFieldsThatAreSet", True, "tClientProductSkuOnHand",
    ),
    "product": KindSpec(
        "product", Product, ("Code",), "ProductFieldsThatAreSet", True, "tClientProduct"
    ),
    # SKUs are written through products; they are a kind of their own for state and Query.
    "sku": KindSpec("sku", Sku, ("PartNo",), "SkuFieldsThatAreSet", True, "tClientProductSku"),
    "pricelist": KindSpec(
        "pricelist", PriceListHead, ("PriceListCode",), "PriceListFieldsThatAreSet", False,
        "tClientPriceList",
    ),
    "company": KindSpec(
        "company", Company, ("Code",), "CompanyFieldsThatAreSet", False, "tClientCompany"
    ),
    "customer": KindSpec(
        "customer", Customer, ("Code",), "CustomerFieldsThatAreSet", False, "tClientCustomer"
    ),
    "supplier": KindSpec(
        "supplier", SupplierProduct, ("SupplierId", "PartNo"), None, True,
        "tClientSupplierProductSku",
    ),
}  # fmt: skip


def key_of(kind: str, row: dict[str, Any]) -> str:
    """The item's key as one string: key field values joined by '|' (e.g. '1001|STD|1')."""
    return "|".join(str(row.get(f, "")) for f in KINDS[kind].key_fields)


class ItemError(ValueError):
    """A row that fails validation; the message names the row and its key."""


def _describe(kind: str, raw: Any) -> str:
    if not isinstance(raw, dict):
        return ""
    parts = [f"{f} '{raw[f]}'" for f in KINDS[kind].key_fields if raw.get(f) is not None]
    return f" ({', '.join(parts)})" if parts else ""


def _where(kind: str, raw: Any, index: int) -> str:
    # Built only for a row that fails: a million-row file pays nothing for its message.
    return f"Item [{index}]{_describe(kind, raw)}"


def prepare(kind: str, raw: Any, index: int, header: ConnectHeader) -> dict[str, Any]:
    """Validate one row; returns the given fields as JSON-ready values or raises ItemError.

    ``index`` is the row's 0-based position in the body array.
    """
    spec = KINDS[kind]
    given = raw
    if kind == "price" and type(raw) is dict:
        plain = plain_price_row(raw)  # the common row, without a model
        if plain is not None:
            missing = _missing_required(kind, plain, header)
            if missing is not None:
                raise ItemError(f"{_where(kind, given, index)}: {missing}: a number is required")
            return plain
    if not isinstance(raw, dict):
        raise ItemError(f"{_where(kind, given, index)}: item must be a JSON object")
    if kind == "supplier" and raw.get("SupplierId") is None and header.SupplierId is not None:
        raw = {**raw, "SupplierId": header.SupplierId}
    try:
        model = spec.model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "item"
        raise ItemError(f"{_where(kind, given, index)}: {field}: {err['msg']}") from None
    row = model.model_dump(mode="json", exclude_unset=True)
    for f in spec.key_fields:  # defaulted key parts (QuantityBreak 1, LocationCode '')
        row[f] = getattr(model, f)
    if kind == "supplier" and row.get("SupplierId") is None:
        where = _where(kind, given, index)
        raise ItemError(f"{where}: SupplierId: required (in the item or the header)")
    missing = _missing_required(kind, row, header)
    if missing is not None:
        raise ItemError(f"{_where(kind, given, index)}: {missing}: a number is required")
    return row


# A row must carry these values when the import writes them (a listed field that is
# missing or null would blank the value in Norce) unless empties are ignored.
_REQUIRED_WHEN_WRITTEN = {"price": ("PriceSale",), "stock": ("OnhandValue",)}


def _missing_required(kind: str, row: dict[str, Any], header: ConnectHeader) -> str | None:
    """The first value the row must carry and lacks, if any."""
    spec = KINDS[kind]
    required = _REQUIRED_WHEN_WRITTEN.get(kind)
    if not required or spec.field_list is None:
        return None
    if kind == "price" and header.IgnoreSkuPriceListFieldsWhenEmpty:
        return None
    selected = header.fields(spec.field_list)
    for name in required:
        written = name in row if selected is None else name in selected
        if written and row.get(name) is None:
            return name
    return None

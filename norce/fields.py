"""Field codes of ``X-StormConnect-Header``'s ``*FieldsThatAreSet`` lists.

Norce selects which fields an import writes by integer codes; these enums give the codes
names (``SkuPriceListField.PriceSale == 3``). Only codes documented in
``shared/norce-api.md`` are listed; the header still accepts other non-negative integers
for the lists Norce documents as longer ("and more").
"""

from __future__ import annotations

from enum import IntEnum


class SkuOnhandField(IntEnum):
    OnhandValue = 3
    IncomingValue = 4
    NextDeliveryDate = 5
    LeadTimeDayCount = 6
    MinimumValue = 8
    MaximumValue = 9
    IsActive = 10
    Infos = 11


class SkuPriceListField(IntEnum):
    PriceSale = 3
    CostPurchase = 4
    CostUnit = 5
    PriceRecommended = 6
    PricePrevious = 7
    PriceCatalog = 8
    IsPriceDiscountable = 9
    IsActive = 10
    IsPriceDiscountableCreateOnly = 11
    PriceRule = 12
    FullfileResetInheritance = 13  # clears earlier overridden rules on products not imported


class ProductField(IntEnum):
    ManufacturerCode = 0
    ManufacturerName = 1
    Alias = 2
    Code = 3
    Variants = 4
    Cultures = 5
    Categories = 6
    MainImage = 7
    AdditionalImages = 8
    Family = 9
    ProductParametrics = 10
    Assortment = 14


class SkuField(IntEnum):
    Status = 1
    Type = 2
    IntegrationPartNo = 3
    EanCode = 5
    IsBuyable = 10
    ActualWeight = 14
    StandardPrice = 20
    VatRate = 21
    StartDate = 23
    StopDate = 24
    PartNoCreateWhenMissing = 26


class CustomerField(IntEnum):
    Code = 2
    EmailAddress = 3
    FirstName = 6
    LastName = 8
    PhoneNumber = 9
    IsActive = 11
    InvoiceAddress = 12
    DeliveryAddresses = 13
    PriceLists = 17
    Companies = 19
    CrmId = 20


class PriceListField(IntEnum):
    """``PriceListFieldsThatAreSet`` (``Product/ImportPriceLists``)."""

    Name = 0
    CurrencyCode = 1
    StartDate = 2
    EndDate = 3
    IsPublic = 4
    IsPrimary = 5
    TypeCode = 6
    Warehouses = 7
    DefaultPriceRule = 8
    Description = 9
    DoNotCreateApplicationPriceList = 11
    SalesArea = 12
    DefaultMinMarginPercent = 13
    LimitToRecPrice = 14
    ParentPriceListCode = 15
    PriceRules = 18


class CompanyField(IntEnum):
    """``CompanyFieldsThatAreSet`` (``Customer/ImportCompanies``)."""

    ApplicationKey = 0
    Id = 1
    Code = 2
    OrganizationNo = 3
    Name = 4
    EmailAddress = 5
    PhoneNumber = 6
    LogoImage = 7
    ParentCompanyCode = 8
    IsActive = 9
    InvoiceAddress = 10
    DeliveryAddresses = 11
    AdditionalInfo = 12
    Contacts = 13
    Customers = 14
    DeliveryMethods = 15
    Discounts = 16
    Flags = 17
    PaymentMethods = 18
    PriceLists = 19
    SearchOnlyByCode = 20
    VatNo = 21
    PreserveFlags = 22

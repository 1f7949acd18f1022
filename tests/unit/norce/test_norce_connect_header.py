from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from norce.connect_header import HEADER_NAME, ConnectHeader
from norce.fields import CustomerField, ProductField, SkuOnhandField, SkuPriceListField


def test_doc_example_is_reproduced_exactly() -> None:
    header = ConnectHeader(account_id=1, full_file=False, sku_onhand_fields_that_are_set=[3])
    assert header.to_json() == (
        '{"AccountId":1,"FullFile":false,"SerializationType":0,"SkuOnhandFieldsThatAreSet":[3]}'
    )


def test_unset_properties_are_omitted_and_one_line() -> None:
    value = ConnectHeader(account_id=7).to_json()
    assert value == '{"AccountId":7,"SerializationType":0}'
    assert "\n" not in value


def test_field_names_enums_and_codes_mix() -> None:
    header = ConnectHeader(
        account_id=2,
        full_file=True,
        ignore_sku_price_list_fields_when_empty=["PriceSale", 10],
        sku_price_list_fields_that_are_set=["PriceSale", SkuPriceListField.CostPurchase, 10],
    )
    assert json.loads(header.to_json()) == {
        "AccountId": 2,
        "FullFile": True,
        "SerializationType": 0,
        "IgnoreSkuPriceListFieldsWhenEmpty": [3, 10],
        "SkuPriceListFieldsThatAreSet": [3, 4, 10],
    }


def test_mandatory_price_fields_must_be_set_and_mandatory_codes() -> None:
    with pytest.raises(ValueError, match="SkuPriceListFieldsThatAreSet lacks"):
        ConnectHeader(
            account_id=2,
            ignore_sku_price_list_fields_when_empty=["CostUnit"],
            sku_price_list_fields_that_are_set=["PriceSale"],
        )
    with pytest.raises(ValueError, match="only codes 3-8 and 10"):
        ConnectHeader(
            account_id=2,
            ignore_sku_price_list_fields_when_empty=[9],
            sku_price_list_fields_that_are_set=[9],
        )
    header = ConnectHeader(account_id=2, sku_price_list_fields_that_are_set=[13])
    assert header.to_dict()["SkuPriceListFieldsThatAreSet"] == [13]  # FullfileResetInheritance


def test_enum_codes_match_the_contract() -> None:
    assert SkuPriceListField.PriceSale == 3
    assert SkuPriceListField.PriceRule == 12
    assert SkuOnhandField.OnhandValue == 3
    assert SkuOnhandField.Infos == 11
    assert ProductField.ManufacturerCode == 0
    assert ProductField.Assortment == 14
    assert CustomerField.CrmId == 20


def test_product_and_customer_lists() -> None:
    header = ConnectHeader(
        account_id=3,
        supplier_id=9,
        storage_name="file-1",
        product_fields_that_are_set=["Code", "Cultures"],
        variant_fields_that_are_set=[1],
        sku_fields_that_are_set=["Status", "EanCode", 99],  # 99: undocumented, passed on
        sku_culture_fields_that_are_set=[2],
        customer_fields_that_are_set=["EmailAddress"],
        is_customer_list_delta=True,
        product_culture_fields_that_are_set=[1],
        company_fields_that_are_set=[4],
    )
    assert json.loads(header.to_json()) == {
        "AccountId": 3,
        "SerializationType": 0,
        "SupplierId": 9,
        "StorageName": "file-1",
        "ProductFieldsThatAreSet": [3, 5],
        "VariantFieldsThatAreSet": [1],
        "SkuFieldsThatAreSet": [1, 5, 99],
        "SkuCultureFieldsThatAreSet": [2],
        "CustomerFieldsThatAreSet": [3],
        "IsCustomerListDelta": True,
        "ProductCultureFieldsThatAreSet": [1],
        "CompanyFieldsThatAreSet": [4],
    }


def test_pascal_case_input_and_extra_properties() -> None:
    header = ConnectHeader.model_validate(
        {"AccountId": 4, "FullFile": False, "PriceListFieldsThatAreSet": [1, 2]}
    )
    assert header.to_json() == (
        '{"AccountId":4,"FullFile":false,"SerializationType":0,"PriceListFieldsThatAreSet":[1,2]}'
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "AccountId"),
        ({"account_id": 1, "full_fil": True}, "full_fil"),
        ({"account_id": 1, "sku_onhand_fields_that_are_set": [7]}, "unknown field code 7"),
        ({"account_id": 1, "sku_onhand_fields_that_are_set": ["Price"]}, "unknown field name"),
        ({"account_id": 1, "sku_onhand_fields_that_are_set": 3}, "must be a list"),
        ({"account_id": 1, "sku_onhand_fields_that_are_set": [3, 3]}, "repeat"),
        ({"account_id": 1, "sku_fields_that_are_set": [-1]}, "unknown field code -1"),
        ({"account_id": 0}, "greater than 0"),
    ],
)
def test_invalid_headers_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ConnectHeader(**kwargs)


def test_header_value_is_ascii() -> None:
    header = ConnectHeader(account_id=1, storage_name="lager-Å")
    assert header.as_headers() == {
        HEADER_NAME: '{"AccountId":1,"SerializationType":0,"StorageName":"lager-\\u00c5"}'
    }
    assert json.loads(header.to_json())["StorageName"] == "lager-Å"

from __future__ import annotations

import pytest

from norce_simulator.header import HeaderError, parse_header


def test_parses_documented_example() -> None:
    h = parse_header(
        '{"AccountId":1,"FullFile":false,"SkuOnhandFieldsThatAreSet":[3],"SerializationType":0}'
    )
    assert h.AccountId == 1
    assert h.FullFile is False
    assert h.fields("SkuOnhandFieldsThatAreSet") == {"OnhandValue"}
    assert h.fields("SkuPriceListFieldsThatAreSet") is None  # absent list: write all given


def test_field_codes_map_to_names() -> None:
    h = parse_header('{"AccountId":7,"SkuPriceListFieldsThatAreSet":[3,4,10,12]}')
    assert h.fields("SkuPriceListFieldsThatAreSet") == {
        "PriceSale",
        "CostPurchase",
        "IsActive",
        "PriceRule",
    }
    h = parse_header('{"AccountId":7,"CustomerFieldsThatAreSet":[3,6]}')
    assert h.fields("CustomerFieldsThatAreSet") == {"EmailAddress", "FirstName"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        ("{AccountId:1}", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"FullFile":true}', "AccountId is required"),
        ('{"AccountId":"abc"}', "AccountId"),
        ('{"AccountId":0}', "AccountId"),
        ('{"AccountId":1,"SkuOnhandFieldsThatAreSet":[3,7]}', "unknown code 7"),
        ('{"AccountId":1,"SkuPriceListFieldsThatAreSet":[99]}', "unknown code 99"),
        ('{"AccountId":1,"ProductFieldsThatAreSet":[-1]}', "unknown code -1"),
        ('{"AccountId":1,"SkuOnhandFieldsThatAreSet":"3"}', "SkuOnhandFieldsThatAreSet"),
        ('{"AccountId":1,"WidgetFieldsThatAreSet":[1]}', "unknown field list"),
        ('{"AccountId":1,"SerializationType":1}', "SerializationType"),
    ],
)
def test_rejects(raw: str | None, message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        parse_header(raw)

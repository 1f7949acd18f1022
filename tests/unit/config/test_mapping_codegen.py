"""The generated full-row mapping (``Mapper._fast``) does what the field loop does:
same rows, same defaults and constants, same errors."""

from __future__ import annotations

from typing import Any

import pytest

from agents.config.mapping import Mapper, MappingError

SPEC: dict[str, Any] = {
    "PartNo": "part_no",
    "PriceListCode": {"from": "price_list_code", "convert": ["strip", "upper"]},
    "QuantityBreak": {"from": "quantity_break", "convert": "int"},
    "PriceSale": {"from": "price_sale", "convert": "decimal"},
    "CostUnit": {"from": "cost_unit", "convert": "decimal", "default": 0},
    "IsPriceDiscountable": {"from": "is_discountable", "convert": "bool", "default": True},
    "Weight": {"from": "weight", "convert": "float", "default": 0.0},
    "Code": {"from": "code", "convert": "str", "default": ""},
    "Name": {"from": "name", "convert": "lower", "default": ""},
    "Tags": {"const": ["a"]},
    "Origin": {"const": "erp"},
}
FULL = {
    "part_no": "A-1",
    "price_list_code": " std ",
    "quantity_break": 1,
    "price_sale": 9.5,
    "cost_unit": 1.25,
    "is_discountable": False,
}


def outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except MappingError as error:
        return ("error", str(error))


@pytest.mark.parametrize(
    "row",
    [
        FULL,
        {**FULL, "cost_unit": None, "is_discountable": None},  # null -> default
        {k: v for k, v in FULL.items() if k not in ("cost_unit", "is_discountable")},
        {**FULL, "price_sale": None},  # null without a default stays null
        {k: v for k, v in FULL.items() if k != "price_sale"},  # missing, no default
        {**FULL, "quantity_break": "x"},  # conversion error
        {**FULL, "price_list_code": 5},
        # The inlined common cases (mapping_codegen._INLINE) at their edges: values
        # beside them take the conversion's own function and error.
        {**FULL, "price_sale": float("inf")},
        {**FULL, "price_sale": float("nan")},
        {**FULL, "price_sale": -0.0},
        {**FULL, "price_sale": 5},
        {**FULL, "price_sale": "9.50"},
        {**FULL, "quantity_break": 2**63 - 1},
        {**FULL, "quantity_break": 2**63},
        {**FULL, "quantity_break": -(2**63) - 1},
        {**FULL, "quantity_break": True},
        {**FULL, "quantity_break": 2.0},
        {**FULL, "is_discountable": 1},
        {**FULL, "is_discountable": "yes"},
        {**FULL, "weight": float("-inf")},
        {**FULL, "weight": 2},
        {**FULL, "code": 5},
        {**FULL, "code": True},
        {**FULL, "name": " MiXed "},
        {**FULL, "name": 7},
    ],
)
def test_generated_map_equals_the_field_loop(row: dict[str, Any]) -> None:
    mapper = Mapper(SPEC)
    assert mapper._fast is not None
    generated = outcome(lambda: mapper.map(row, False, None))
    assert generated == outcome(lambda: mapper._map_fields(row, False))


def test_constants_are_copied_per_row() -> None:
    mapper = Mapper(SPEC)
    first = mapper.map(FULL, False, None)
    first["Tags"].append("b")
    assert mapper.map(FULL, False, None)["Tags"] == ["a"]


def test_nested_targets_take_the_loop() -> None:
    mapper = Mapper({"PartNo": "part_no", "Price.Sale": {"from": "price_sale"}})
    assert mapper._fast is None
    assert mapper.map(FULL, False, None) == {"PartNo": "A-1", "Price": {"Sale": 9.5}}

"""The mapping DSL, its conversions, nesting, hooks, and ChangeEvent -> MappedChange.

The last through the reference path (``tests/support/reference_path.py``), which maps with
the same ``map_for_import`` as the fused hot path.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from agents.config.mapping import Mapper, MappingError, norce_key
from agents.config.sync_config import InputBinding, load_config
from streams.records import ChangeEvent, Version
from tests.support.mapping_rows import (
    ITEM_ROW,
    PIM_ROW,
    PRICE_KEY_COLUMNS,
    PRICE_ROW,
    key_only,
)
from tests.support.reference_path import to_mapped
from tests.support.sync_config import convert

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "example.yaml"


class TestConversions:
    @pytest.mark.parametrize(
        ("conversion", "value", "expected"),
        [
            ("str", 12, "12"),
            ("str", True, "true"),
            ("str", "x", "x"),
            ("int", "42", 42),
            ("int", 42.0, 42),
            ("int", " 7 ", 7),
            ("float", "1.25", 1.25),
            ("float", 3, 3.0),
            ("decimal", "19.90", 19.9),
            ("decimal", 5, 5),
            ("decimal", 5.5, 5.5),
            ("decimal", "100", 100),
            ("decimal", {"scale": 3, "value": "MDk="}, 12.345),  # VariableScaleDecimal
            ("decimal:2", "ThY=", 199.9),  # precise mode without a schema
            ("decimal:2", "/2o=", -1.5),
            ("bool", "yes", True),
            ("bool", "F", False),
            ("bool", 1, True),
            ("bool", False, False),
            ("not", "true", False),
            ("positive", 3, True),
            ("positive", 0, False),
            ("positive", "-1.5", False),
            ("upper", "std", "STD"),
            ("lower", "SEK", "sek"),
            ("strip", "  A-1 ", "A-1"),
            (["strip", "upper"], " std ", "STD"),
            ("cents", 1999, 19.99),
            ("cents", "250", 2.5),
            ("date", 19844, "2024-05-01"),  # io.debezium.time.Date: days since 1970-01-01
            ("date", 0, "1970-01-01"),
            ("date", -1, "1969-12-31"),
            ("date", "2024-05-02", "2024-05-02"),
            ("date", "2024-05-02T23:59:00+02:00", "2024-05-02"),
            ("datetime", 1714000000123, "2024-04-24T23:06:40.123000"),  # Timestamp, ms
            ("datetime:us", 1714000000123456, "2024-04-24T23:06:40.123456"),  # MicroTimestamp
            ("datetime:ns", 1714000000123456789, "2024-04-24T23:06:40.123456"),
            ("datetime:s", 1714000000, "2024-04-24T23:06:40"),
            ("datetime", "2024-04-24T23:06:40Z", "2024-04-24T23:06:40+00:00"),  # ZonedTimestamp
            ("datetime", "2024-04-24 10:00:00", "2024-04-24T10:00:00"),
        ],
    )
    def test_converts(self, conversion: str | list[str], value: Any, expected: Any) -> None:
        result = convert(conversion, value)
        assert result == expected
        assert type(result) is type(expected)

    @pytest.mark.parametrize(
        ("conversion", "value", "reason"),
        [
            ("int", "4.5", "not an integer"),
            ("int", "abc", "not a number"),
            ("int", [1], "expected a number"),
            ("int", True, "expected a number"),
            ("float", "nan", "not a finite number"),
            ("decimal", "1,5", "not a number"),
            ("decimal", True, "expected a number"),
            ("decimal", float("inf"), "not a finite number"),
            ("decimal:2", "***", "not a base64 decimal"),
            ("bool", "maybe", "not a boolean"),
            ("bool", 2, "not a boolean"),
            ("upper", 5, "upper needs a string"),
            ("cents", 12.5, "cents must be whole"),
            ("date", "02/05/2024", "not an ISO date"),
            ("date", 10**9, "day number out of range"),
            ("datetime", "noon", "not an ISO datetime"),
            ("datetime", 1.5, "not a datetime"),
            ("str", {"a": 1}, "cannot convert dict to str"),
        ],
    )
    def test_conversion_errors(self, conversion: str, value: Any, reason: str) -> None:
        with pytest.raises(MappingError) as info:
            convert(conversion, value)
        assert info.value.stage == "map"
        assert info.value.reason.startswith("Out from 'col': ")
        assert reason in info.value.reason

    def test_null_skips_conversions(self) -> None:
        assert convert(["strip", "upper"], None) is None


class TestMapper:
    def test_shorthand_const_default(self) -> None:
        mapper = Mapper(
            {
                "PartNo": "part_no",
                "CurrencyCode": {"const": "SEK"},
                "QuantityBreak": {"from": "qty", "convert": "int", "default": 1},
                "CostUnit": {"from": "cost_unit", "default": 0},
                "Note": "note",
            }
        )
        assert mapper({"part_no": "A", "qty": "3", "cost_unit": None, "note": None}) == {
            "PartNo": "A",
            "CurrencyCode": "SEK",
            "QuantityBreak": 3,
            "CostUnit": 0,  # default replaces a null
            "Note": None,  # a null without a default passes
        }
        assert mapper({"part_no": "A", "note": "n"})["QuantityBreak"] == 1  # missing -> default

    def test_missing_column_without_default_is_an_error(self) -> None:
        mapper = Mapper({"PartNo": "part_no", "PriceSale": "price_sale"})
        with pytest.raises(MappingError, match="PriceSale: column 'price_sale' is missing"):
            mapper({"part_no": "A", "price_sael": 1})

    def test_dotted_paths_build_nested_lists_and_objects(self) -> None:
        mapper = Mapper(
            {
                "Code": "code",
                "Cultures.0.CultureCode": {"const": "sv-SE"},
                "Cultures.0.Name": "name_sv",
                "Cultures.1.CultureCode": {"const": "en-GB"},
                "Cultures.1.Name": "name_en",
                "Variants.0.Skus.0.PartNo": "part_no",
                "Variants.0.Skus.0.EanCode": "ean",
                "Variants.0.Skus.1.PartNo": "part_no_2",
            }
        )
        row = {"code": "P1", "name_sv": "Stol", "name_en": "Chair", "part_no": "P1-A"}
        row |= {"ean": "7310000000001", "part_no_2": "P1-B"}
        assert mapper(row) == {
            "Code": "P1",
            "Cultures": [
                {"CultureCode": "sv-SE", "Name": "Stol"},
                {"CultureCode": "en-GB", "Name": "Chair"},
            ],
            "Variants": [
                {"Skus": [{"PartNo": "P1-A", "EanCode": "7310000000001"}, {"PartNo": "P1-B"}]}
            ],
        }

    def test_dotted_from_reads_nested_entities(self) -> None:
        mapper = Mapper(
            {
                "price.amount": {
                    "from": "PriceLists.0.PriceSale",
                    "convert": "decimal",
                    "default": None,
                },
                "price.currency": {"from": "PriceLists.0.CurrencyCode", "default": "SEK"},
                "in_stock": {"from": "OnHand.Value", "convert": "positive", "default": False},
            }
        )
        entity = {
            "PriceLists": [{"PriceSale": 99.5, "CurrencyCode": "NOK"}],
            "OnHand": {"Value": 3},
        }
        assert mapper(entity) == {"price": {"amount": 99.5, "currency": "NOK"}, "in_stock": True}
        # Missing nested values fall back to their defaults.
        assert mapper({"PriceLists": []}) == {
            "price": {"amount": None, "currency": "SEK"},
            "in_stock": False,
        }
        with pytest.raises(MappingError, match=r"column 'OnHand\.Value' is missing"):
            Mapper({"Stock": "OnHand.Value"})({"OnHand": None})

    def test_consts_are_not_shared_between_rows(self) -> None:
        mapper = Mapper({"Tags": {"const": ["a"]}})
        first = mapper({})
        first["Tags"].append("b")
        assert mapper({}) == {"Tags": ["a"]}

    def test_partial_maps_only_what_the_image_holds(self) -> None:
        mapper = Mapper(
            {
                "PartNo": "part_no",
                "PriceSale": {"from": "price_sale", "convert": "decimal"},
                "CostUnit": {"from": "cost_unit", "default": 0},
                "CurrencyCode": {"const": "SEK"},
            }
        )
        # Missing and null columns, defaults and constants are all left out.
        assert mapper({"part_no": "A", "price_sale": None}, partial=True) == {"PartNo": "A"}

    @pytest.mark.parametrize(
        ("spec", "reason"),
        [
            ({}, "mapping is empty"),
            ({"A": {"from": "a", "convert": "decmal"}}, "unknown conversion 'decmal'"),
            ({"A": {"from": "a", "convert": "datetime:minutes"}}, "datetime unit"),
            ({"A": {"from": "a", "convert": "decimal:x"}}, "integer argument"),
            ({"A": {"from": "a", "const": 1}}, "exactly one of 'from' or 'const'"),
            ({"A": {"convert": "int"}}, "exactly one of 'from' or 'const'"),
            ({"A": {"const": 1, "convert": "int"}}, "'const' takes no"),
            ({"A": {"from": "a", "rename": "b"}}, "Extra inputs are not permitted"),
            ({"A": "a", "A.B": "b"}, "clashes"),
            ({"A.0.X": "a", "A.2.X": "b"}, "without gaps"),
            ({"A.0": "a", "A.x": "b"}, "mixes list indexes and field names"),
            ({"0.A": "a"}, "must start with a name"),
            ({"A..B": "a"}, "bad field path"),
            ({"A": "a b"}, "bad field path"),
        ],
    )
    def test_bad_specs(self, spec: dict[str, Any], reason: str) -> None:
        with pytest.raises(ValueError, match=None) as info:
            Mapper(spec)
        assert reason in str(info.value)


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("norce_sync_test_hooks")

    def add_alias(row: dict[str, Any], change: Any) -> dict[str, Any]:
        return {**row, "Alias": f"{row['Code']}-{change.source}", "Seen": change.row["extra"]}

    def boom(row: dict[str, Any], change: Any) -> dict[str, Any]:
        raise RuntimeError("kaboom")

    def not_a_dict(row: dict[str, Any], change: Any) -> Any:
        return [row]

    module.add_alias = add_alias  # type: ignore[attr-defined]
    module.boom = boom  # type: ignore[attr-defined]
    module.not_a_dict = not_a_dict  # type: ignore[attr-defined]
    module.constant = 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "norce_sync_test_hooks", module)
    return module


class TestHooks:
    def change(self, row: dict[str, Any]) -> ChangeEvent:
        return ChangeEvent(
            source="pim",
            kind="product",
            source_key="P1",
            op="u",
            version=Version(ts_ms=1, position=1),
            row=row,
        )

    def test_hook_runs_after_the_declarative_step(self, hooks: types.ModuleType) -> None:
        mapper = Mapper({"Code": "code"}, hook="norce_sync_test_hooks:add_alias")
        row = {"code": "P1", "extra": 5}
        assert mapper(row, context=self.change(row)) == {"Code": "P1", "Alias": "P1-pim", "Seen": 5}

    def test_hook_failures_are_mapping_errors(self, hooks: types.ModuleType) -> None:
        row = {"code": "P1"}
        with pytest.raises(MappingError, match="hook norce_sync_test_hooks:boom failed"):
            Mapper({"Code": "code"}, hook="norce_sync_test_hooks:boom")(row, context=None)
        with pytest.raises(MappingError, match="returned list, not a dict"):
            Mapper({"Code": "code"}, hook="norce_sync_test_hooks:not_a_dict")(row)

    @pytest.mark.parametrize(
        ("ref", "reason"),
        [
            ("norce_sync_test_hooks", "must look like"),
            ("norce_sync_test_hooks:missing", "has no 'missing'"),
            ("norce_sync_test_hooks:constant", "is not callable"),
            ("no_such_module_xyz:f", "cannot import"),
        ],
    )
    def test_bad_hook_refs(self, hooks: types.ModuleType, ref: str, reason: str) -> None:
        with pytest.raises(ValueError) as info:
            Mapper({"Code": "code"}, hook=ref)
        assert reason in str(info.value)


class TestNorceKey:
    def test_keys_per_kind(self) -> None:
        price = {"PartNo": "A", "PriceListCode": "STD", "QuantityBreak": 1}
        assert norce_key("price", price) == "A|STD|1"
        stock = {"PartNo": "A", "WarehouseCode": "W1", "LocationCode": "L1"}
        assert norce_key("stock", stock) == "A|W1|L1"
        assert norce_key("product", {"Code": "P1"}) == "P1"
        assert norce_key("customer", {"Code": 1001}) == "1001"
        assert norce_key("price", {**price, "QuantityBreak": 1.0}) == "A|STD|1"

    def test_override_with_a_nested_path(self) -> None:
        row = {"Code": "P1", "Variants": [{"Skus": [{"PartNo": "P1-A"}]}]}
        assert norce_key("product", row, ("Variants.0.Skus.0.PartNo",)) == "P1-A"

    @pytest.mark.parametrize(
        ("row", "reason"),
        [
            ({"PartNo": "A", "PriceListCode": "STD"}, "QuantityBreak is missing"),
            ({"PartNo": "", "PriceListCode": "STD", "QuantityBreak": 1}, "PartNo is missing"),
            ({"PartNo": None, "PriceListCode": "STD", "QuantityBreak": 1}, "PartNo is missing"),
            ({"PartNo": True, "PriceListCode": "STD", "QuantityBreak": 1}, "string or number"),
            ({"PartNo": ["A"], "PriceListCode": "STD", "QuantityBreak": 1}, "string or number"),
        ],
    )
    def test_bad_keys(self, row: dict[str, Any], reason: str) -> None:
        with pytest.raises(MappingError) as info:
            norce_key("price", row)
        assert info.value.stage == "map" and reason in info.value.reason


@pytest.fixture(scope="module")
def config() -> Any:
    return load_config(EXAMPLE)


def change_for(binding: InputBinding, row: dict[str, Any], *, deleted: bool = False) -> ChangeEvent:
    return ChangeEvent(
        source=binding.source,
        kind=binding.kind,
        source_key="k",
        op="d" if deleted else "u",
        version=Version(ts_ms=1714000000123, position=24023928),
        row=row,
        deleted=deleted,
    )


class TestToMapped:
    def test_price_upsert(self, config: Any) -> None:
        binding = config.binding_for_topic("erp.public.prices")
        mapped = to_mapped(change_for(binding, PRICE_ROW), binding)
        assert mapped.key == "A-100|STD|1"
        assert mapped.state_key == "erp|price|A-100|STD|1"
        assert mapped.version == Version(ts_ms=1714000000123, position=24023928)
        assert not mapped.deleted
        assert mapped.row == {
            "PartNo": "A-100",
            "PriceListCode": "STD",
            "QuantityBreak": 1,
            "PriceSale": 199.9,
            "CostPurchase": 120.0,
            "CostUnit": 0,
            "PriceRecommended": 249.0,
            "IsPriceDiscountable": True,
            "CurrencyCode": "SEK",
            "IsActive": True,
        }

    def test_delete_maps_the_before_image_and_deactivates(self, config: Any) -> None:
        binding = config.binding_for_topic("erp.public.prices")
        before = key_only(PRICE_ROW, PRICE_KEY_COLUMNS)
        mapped = to_mapped(change_for(binding, before, deleted=True), binding)
        assert mapped.deleted
        assert mapped.key == "A-100|STD|1"
        assert mapped.row == {
            "PartNo": "A-100",
            "PriceListCode": "STD",
            "QuantityBreak": 1,
            "IsActive": False,
        }

    def test_delete_with_a_full_before_image_keeps_its_values(self, config: Any) -> None:
        binding = config.binding_for_topic("erp.public.prices")
        mapped = to_mapped(change_for(binding, PRICE_ROW, deleted=True), binding)
        assert mapped.row["PriceSale"] == 199.9 and mapped.row["IsActive"] is False

    def test_delete_without_key_columns_fails_clearly(self, config: Any) -> None:
        binding = config.binding_for_topic("erp.public.prices")
        with pytest.raises(MappingError) as info:
            to_mapped(change_for(binding, {"part_no": "A-100"}, deleted=True), binding)
        assert info.value.stage == "map"
        assert info.value.reason == "key field PriceListCode is missing or empty"

    def test_a_mapped_is_active_is_kept_on_upsert_and_forced_off_on_delete(self) -> None:
        binding = InputBinding(
            topic="erp.public.customers",
            source="erp",
            kind="customer",
            mapping={"Code": "code", "IsActive": {"from": "active", "convert": "bool"}},
            owned_fields={"CustomerFieldsThatAreSet": ["IsActive"]},
        )
        assert to_mapped(change_for(binding, {"code": 7, "active": "n"}), binding).row == {
            "Code": 7,
            "IsActive": False,
        }
        deleted = to_mapped(change_for(binding, {"code": 7, "active": "y"}, deleted=True), binding)
        assert deleted.row["IsActive"] is False

    def test_product_keyed_per_sku(self, config: Any) -> None:
        binding = config.binding_for_topic("erp.public.items")
        mapped = to_mapped(change_for(binding, ITEM_ROW), binding)
        assert mapped.key == "P1-A"
        assert mapped.state_key == "erp|product|P1-A"
        assert mapped.row["Variants"] == [
            {
                "Skus": [
                    {
                        "PartNo": "P1-A",
                        "EanCode": "7310000000001",
                        "ActualWeight": 1.25,
                        "IsBuyable": True,
                        "StandardPrice": 99.0,
                    }
                ]
            }
        ]

    def test_pim_product_content(self, config: Any) -> None:
        binding = config.binding_for_topic("pim.public.products")
        mapped = to_mapped(change_for(binding, PIM_ROW), binding)
        assert mapped.state_key == "pim|product|P1"
        assert mapped.row["Cultures"][1] == {
            "CultureCode": "en-GB",
            "Name": "Chair",
            "Title": "Chair, oak",
            "Description": None,
        }
        assert mapped.row["Variants"][0]["Skus"][0]["Cultures"] == [
            {"CultureCode": "sv-SE", "Comment": "Monteras"}
        ]
        deleted = to_mapped(change_for(binding, {"product_code": "P1"}, deleted=True), binding)
        assert deleted.row == {"Code": "P1", "IsActive": False}

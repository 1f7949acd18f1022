"""The pure comparison: Norce's rules for what it should hold, one class per item."""

from __future__ import annotations

from typing import Any

import pytest

from agents.config.sync_config import load_config
from agents.reconcile.rules import (
    FULL_IMPORT_ONLY,
    ROW_IGNORED,
    Expected,
    Tally,
    expect,
    plan_for,
    same,
    scope_of,
)
from tests.support.sync_config import EXAMPLE, with_changes

CONFIG = load_config(EXAMPLE)
PRICES = CONFIG.binding_for_topic("erp.public.prices")
PLAN = plan_for(PRICES)


def price(**values: Any) -> dict[str, Any]:
    row = {"PartNo": "A", "PriceListCode": "STD", "QuantityBreak": 1, "PriceSale": 10.0}
    row |= {"CostPurchase": 6.0, "CostUnit": 6.2, "PriceRecommended": 12.0}
    row |= {"IsPriceDiscountable": True, "IsActive": True, "CurrencyCode": "SEK"}
    return row | values


def state(row: dict[str, Any], deleted: bool = False, pending: bool = False) -> dict[str, Any]:
    return {"v": [1, 1], "row": row, "d": deleted, "p": 5.0 if pending else None, "h": None}


def norce(**values: Any) -> dict[str, Any]:
    """A Query price row (QtyBreak, not QuantityBreak) with Connect's names applied."""
    row = price(**values)
    query = {("QtyBreak" if k == "QuantityBreak" else k): v for k, v in row.items()}
    return PLAN.norce_row(query)


def test_the_plan_selects_owned_fields_with_query_names() -> None:
    assert PLAN.spec.entity_set == "Products/ProductSkuPriceLists"
    assert PLAN.fields == (
        "PriceSale", "CostPurchase", "CostUnit", "PriceRecommended", "IsPriceDiscountable",
        "IsActive",
    )  # fmt: skip
    assert PLAN.select[:3] == ["PartNo", "PriceListCode", "QtyBreak"]
    assert "CurrencyCode" not in PLAN.select  # mapped but not owned: never compared
    assert PLAN.key(norce()) == "A|STD|1"


def test_only_owned_fields_count_and_numbers_compare_to_four_decimals() -> None:
    tally = Tally()
    expected = expect(PLAN, state(price()))
    assert tally.compared("A|STD|1", expected, norce(CurrencyCode="EUR", PriceSale=10.00001))
    assert tally.counts["matching"] == 1
    assert tally.compared("A|STD|1", expected, norce(PriceSale=11.0)) == "different"
    assert tally.by_field == {"PriceSale": 1}
    assert tally.examples["different:PriceSale"] == [
        {"key": "A|STD|1", "state": 10.0, "norce": 11.0}
    ]
    assert same(True, True) and not same(True, 1) and not same(None, 0)


@pytest.mark.parametrize("zero", [0, 0.0, None])
def test_a_null_or_zero_price_is_unwritable_not_different(zero: Any) -> None:
    tally = Tally()
    expected = expect(PLAN, state(price(PriceSale=zero)))
    assert expected.unwritable == {"PriceSale": zero}
    assert tally.compared("A|STD|1", expected, norce(PriceSale=99.0)) == "unwritable"
    assert tally.unwritable_by_field == {"PriceSale": 1}
    assert tally.counts["different"] == 0
    # Another owned field differing as well: the item is different (a delta fixes that
    # field), and the unwritable value is still tallied by field.
    assert tally.compared("A|STD|1", expected, norce(CostUnit=1.0)) == "different"
    assert tally.unwritable_by_field == {"PriceSale": 2}


def test_a_row_missing_a_mandatory_price_field_is_ignored_whole() -> None:
    plan = plan_for(with_changes(PRICES, mandatory_price_fields=["PriceSale"]))
    expected = expect(plan, state(price(PriceSale=None)))
    assert expected.values == {} and ROW_IGNORED in expected.unwritable
    assert Tally().compared("A|STD|1", expected, norce(PriceSale=1.0)) == "unwritable"


def test_deleted_at_the_source() -> None:
    expected = expect(PLAN, state(price(IsActive=False), deleted=True))
    assert expected.values == {"IsActive": False}
    tally = Tally()
    assert tally.compared("A|STD|1", expected, norce(IsActive=False, PriceSale=1.0)) == "matching"
    assert tally.compared("A|STD|1", expected, norce(IsActive=True)) == "different"
    assert tally.missing("A|STD|1", expected) == "matching"  # nothing to deactivate


def test_pending_keys_are_counted_apart_from_drift() -> None:
    tally = Tally()
    expected = expect(PLAN, state(price(), pending=True))
    assert tally.compared("A|STD|1", expected, norce(PriceSale=1.0)) == "pending"
    assert tally.missing("A|STD|1", expected) == "pending"
    assert tally.compared("A|STD|1", expected, norce()) == "matching"
    assert tally.counts["different"] == tally.counts["missing"] == 0


def test_absent_from_state_in_and_out_of_full_import_scope() -> None:
    tally = Tally()
    assert tally.absent("X|STD|1", norce(PartNo="X"), in_scope=True) == "absent"
    assert tally.absent("X|B2B|1", norce(PartNo="X"), in_scope=False) == "absent"
    assert tally.absent("Y|STD|1", norce(PartNo="Y", IsActive=False), True) == "absent_inactive"
    summary = tally.summary()
    assert (summary["absent"], summary["would_deactivate"], summary["absent_inactive"]) == (2, 1, 1)


def test_examples_stay_bounded() -> None:
    tally = Tally()
    expected = expect(PLAN, state(price()))
    for n in range(1000):
        tally.compared(f"A{n}|STD|1", expected, norce(PriceSale=1.0))
        tally.missing(f"M{n}|STD|1", expected)
    assert tally.counts["different"] == tally.counts["missing"] == 1000
    assert all(len(shown) <= 5 for shown in tally.examples.values())


STOCK = plan_for(CONFIG.binding_for_topic("erp.public.stock"))
ITEMS = plan_for(CONFIG.binding_for_topic("erp.public.items"))
PIM = plan_for(CONFIG.binding_for_topic("pim.public.products"))


def stock(**values: Any) -> dict[str, Any]:
    row = {"PartNo": "A", "WarehouseCode": "MAIN", "LocationCode": "A1", "OnhandValue": 5.0}
    row |= {"IncomingValue": 0.0, "NextDeliveryDate": "2026-01-02", "LeadTimeDayCount": 3}
    return row | {"IsActive": True} | values


def test_stock_pages_skus_with_their_onhands_flattened_to_rows() -> None:
    assert STOCK.spec.entity_set == "Products/ProductSkus"
    assert STOCK.query.to_odata() == (
        "$select=PartNo&$expand=OnHands($select=WarehouseCode,LocationCode,OnhandValue,"
        "IncomingValue,NextDeliveryDate,LeadTimeDayCount,IsActive)"
    )
    page = [
        {"PartNo": "A", "OnHands": [
            {"WarehouseCode": "MAIN", "LocationCode": "A1", "OnhandValue": 5},
            {"WarehouseCode": "WEB", "LocationCode": "", "OnhandValue": 1},
        ]},
        {"PartNo": "B", "OnHands": []},
    ]  # fmt: skip
    rows = list(STOCK.items(page))
    assert [STOCK.key(r) for r in rows] == ["A|MAIN|A1", "A|WEB|"]  # an empty location too
    with pytest.raises(ValueError, match="paged OnHands"):
        list(STOCK.items([{"PartNo": "A", "OnHands": [], "OnHands@odata.nextLink": "x"}]))


def test_stock_compares_owned_values_and_dates_as_points_in_time() -> None:
    expected = expect(STOCK, state(stock()))
    assert expected.scope == ("MAIN", "A1")
    tally = Tally()
    # Norce answers the date as a datetime; 0 and null are written for stock (norce-api.md
    # states the null/0 rule for price rows only).
    norce_row = STOCK.norce_row(stock(NextDeliveryDate="2026-01-02T00:00:00"))
    assert tally.compared("A|MAIN|A1", expected, norce_row) == "matching"
    zero = expect(STOCK, state(stock(OnhandValue=0, IncomingValue=None)))
    assert zero.values["OnhandValue"] == 0 and zero.values["IncomingValue"] is None
    assert tally.compared("A|MAIN|A1", zero, norce_row) == "different"
    assert tally.by_field == {"IncomingValue": 1, "OnhandValue": 1}


def test_a_null_onhand_value_is_rejected_by_norce_not_different() -> None:
    expected = expect(STOCK, state(stock(OnhandValue=None)))
    assert expected.values == {}
    assert Tally().compared("A|MAIN|A1", expected, STOCK.norce_row(stock())) == "unwritable"


def test_stock_outside_the_states_warehouse_locations_is_not_deactivated_by_a_full_import() -> None:
    scopes = {expect(STOCK, state(stock())).scope}
    assert scope_of(STOCK, stock(PartNo="X"), scopes)
    assert not scope_of(STOCK, stock(PartNo="X", LocationCode="B2"), scopes)
    assert not scope_of(STOCK, stock(PartNo="X", WarehouseCode="WEB"), scopes)


def item(**sku: Any) -> dict[str, Any]:
    """A mapped ERP item: the product with its one SKU (the logistics fields)."""
    fields = {"PartNo": "A", "EanCode": "7300", "ActualWeight": 1.5, "IsBuyable": True}
    fields |= {"StandardPrice": 100.0}
    variant = {"Skus": [fields | sku]}
    return {"Code": "P1", "ManufacturerCode": "ACME", "Variants": [variant], "IsActive": True}


def test_a_product_binding_keyed_per_sku_compares_the_skus_owned_fields() -> None:
    assert ITEMS.spec.entity_set == "Products/ProductSkus"
    assert ITEMS.fields == ("EanCode", "ActualWeight", "IsBuyable", "StandardPrice")
    assert ITEMS.select == ["PartNo", *ITEMS.fields, "IsActive"]
    expected = expect(ITEMS, state(item()))
    sku = {"PartNo": "A", "EanCode": "7300", "ActualWeight": 1.5, "IsBuyable": True}
    sku |= {"StandardPrice": 100.0, "IsActive": True, "ProductCode": "P1"}
    assert ITEMS.key(sku) == "A"
    tally = Tally()
    assert tally.compared("A", expected, sku) == "matching"
    assert tally.compared("A", expected, {**sku, "ActualWeight": 2.0}) == "different"
    # An active item Norce holds inactive (a delta re-imports it, which activates it).
    assert tally.compared("A", expected, {**sku, "IsActive": False}) == "different"
    assert tally.by_field == {"ActualWeight": 1, "IsActive": 1}
    assert tally.absent("B", {**sku, "PartNo": "B"}, scope_of(ITEMS, sku, {()})) == "absent"
    assert tally.would_deactivate == 1  # a full import inactivates SKUs it lacks


def test_a_product_deleted_at_the_source_waits_for_a_full_import() -> None:
    expected = expect(ITEMS, state(item(), deleted=True))
    tally = Tally()
    sku = {"PartNo": "A", "IsActive": True}
    # No IsActive field code for products: no delta can deactivate, so not "different".
    assert tally.compared("A", expected, sku) == "unwritable"
    assert tally.compared("A", expected, {**sku, "IsActive": False}) == "matching"
    assert tally.examples["unwritable:" + FULL_IMPORT_ONLY] == [
        {"key": "A", "state": False, "norce": True}
    ]


def test_pim_products_compare_plain_product_fields_and_name_what_they_leave_out() -> None:
    assert PIM.spec.entity_set == "Products/Products"
    assert PIM.fields == ("ManufacturerName",)
    assert set(PIM.not_compared) == {"Cultures", "SkuCultureFieldsThatAreSet.Comment"}
    row = {"Code": "P1", "ManufacturerName": "Acme AB", "Cultures": [], "IsActive": True}
    expected = expect(PIM, state(row))
    tally = Tally()
    assert tally.compared("P1", expected, {**row, "Cultures": [{"x": 1}]}) == "matching"
    assert tally.compared("P1", expected, {**row, "ManufacturerName": "X"}) == "different"


def test_a_binding_owning_no_comparable_field_is_refused_with_the_reasons() -> None:
    binding = with_changes(
        CONFIG.binding_for_topic("pim.public.products"),
        owned_fields={"ProductFieldsThatAreSet": ["Cultures"]},
    )
    with pytest.raises(ValueError, match=r"no owned field .* Cultures: a list or object"):
        plan_for(binding)


def test_reconcile_schedule_is_off_by_default_and_parses() -> None:
    assert PRICES.reconcile_schedule is None and PRICES.reconcile_repair is False
    binding = with_changes(PRICES, reconcile_schedule="0 6 * * *", reconcile_repair=True)
    assert str(binding.reconcile_schedule) == "0 6 * * *" and binding.reconcile_repair


def test_customers_compare_their_owned_plain_fields_by_code() -> None:
    binding = with_changes(
        PRICES,
        topic="crm.public.customers",
        kind="customer",
        key_columns=["code"],
        mapping={
            "Code": "code",
            "EmailAddress": "email",
            "FirstName": "first_name",
            "InvoiceAddress.Line1": "street",
        },
        owned_fields={"CustomerFieldsThatAreSet": [3, "FirstName", "IsActive", "InvoiceAddress"]},
        mandatory_price_fields=[],
    )
    plan = plan_for(binding)
    assert plan.spec.entity_set == "Customers/Customers"
    # Field codes are names too; structured fields (addresses) are not compared.
    assert plan.fields == ("EmailAddress", "FirstName", "IsActive")
    row = {"Code": "C1", "EmailAddress": "a@b.se", "FirstName": "Ann", "IsActive": True}
    expected = expect(plan, state(row))
    tally = Tally()
    assert tally.compared("C1", expected, {**row, "FirstName": "Anna"}) == "different"
    assert plan.key({"Code": "C1", "Id": 7}) == "C1"
    assert tally.absent("C2", {"Code": "C2", "IsActive": True}, in_scope=False) == "absent"
    assert tally.would_deactivate == 0  # customers have no FullFile


def test_the_report_names_what_a_pair_does_not_compare() -> None:
    from agents.ops.reconcile_cli import report
    from streams.messages import ReconcileResult

    result = ReconcileResult(
        request_id="r", source="pim", kind="product", by="cli", started_at=0.0,
        matching=4, different=1, different_by_field={"ManufacturerName": 1},
        not_compared=dict(PIM.not_compared),
    )  # fmt: skip
    text = report(result)
    assert "different           1  (ManufacturerName: 1)" in text
    assert "  not compared: Cultures (a list or object" in text


def test_a_row_held_back_for_a_reference_is_its_own_class() -> None:
    tally = Tally()
    held = Expected({"PriceSale": 1.0}, {}, False, True)  # pending, but waiting for its SKU
    plain = Expected({"PriceSale": 2.0}, {}, False, False)
    assert tally.missing("A|STD|1", held, "SKU A not in Norce") == "waiting_reference"
    assert tally.missing("B|STD|1", plain) == "missing"
    deleted = Expected({}, {}, True, False)
    assert tally.missing("C|STD|1", deleted, "SKU C not in Norce") == "matching"
    summary = tally.summary()
    assert (summary["waiting_reference"], summary["missing"], summary["pending"]) == (1, 1, 0)
    assert summary["examples"]["waiting_reference"] == [
        {"key": "A|STD|1", "reason": "SKU A not in Norce"}
    ]

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from norce.odata import ODataQuery, and_, entity_key, eq, ge, gt, le, literal, lt, ne, not_, or_


def test_brief_example() -> None:
    query = (
        ODataQuery()
        .filter(eq("PartNo", "1001"), ne("Status", 9))
        .select("PartNo", "Name")
        .expand("PriceLists", filter=eq("IsActive", True))
        .top(100)
        .skip(0)
    )
    assert query.to_params() == {
        "$filter": "PartNo eq '1001' and Status ne 9",
        "$select": "PartNo,Name",
        "$expand": "PriceLists($filter=IsActive eq true)",
        "$top": "100",
        "$skip": "0",
    }
    assert query.to_query_string() == (
        "$filter=PartNo%20eq%20'1001'%20and%20Status%20ne%209&$select=PartNo,Name"
        "&$expand=PriceLists($filter=IsActive%20eq%20true)&$top=100&$skip=0"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("O'Brien", "'O''Brien'"),
        ("''", "''''''"),
        ("", "''"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (42, "42"),
        (-1, "-1"),
        (1.5, "1.5"),
        (Decimal("99.90"), "99.90"),
        (Decimal("1E+2"), "100"),
        (date(2024, 2, 29), "2024-02-29"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
        (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    ],
)
def test_literals(value: object, expected: str) -> None:
    assert literal(value) == expected  # type: ignore[arg-type]


def test_bad_literals_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        literal(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="NaN"):
        literal(float("nan"))
    with pytest.raises(TypeError):
        literal(object())  # type: ignore[arg-type]


def test_injection_through_a_string_stays_inside_the_literal() -> None:
    expr = eq("PartNo", "x' or PartNo ne 'y")
    assert expr.to_odata() == "PartNo eq 'x'' or PartNo ne ''y'"


@pytest.mark.parametrize("name", ["Part No", "PartNo)", "1abc", "a/", "x eq 1", ""])
def test_property_paths_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="property path"):
        eq(name, 1).to_odata()
    with pytest.raises(ValueError, match="property path"):
        ODataQuery().select(name)


def test_comparisons_and_logic() -> None:
    assert gt("A", 1).to_odata() == "A gt 1"
    assert ge("A", 1).to_odata() == "A ge 1"
    assert lt("A", 1).to_odata() == "A lt 1"
    assert le("A", 1).to_odata() == "A le 1"
    assert (eq("A", 1) & eq("B", 2) & eq("C", 3)).to_odata() == "A eq 1 and B eq 2 and C eq 3"
    assert or_(eq("A", 1), eq("B", 2)).to_odata() == "A eq 1 or B eq 2"
    assert and_(eq("A", 1), eq("B", 2) | eq("C", 3)).to_odata() == "A eq 1 and (B eq 2 or C eq 3)"
    assert (~eq("A", None)).to_odata() == "not (A eq null)"
    assert not_(eq("A", 1) & eq("B", 2)).to_odata() == "not (A eq 1 and B eq 2)"
    assert and_(eq("A", 1)).to_odata() == "A eq 1"
    with pytest.raises(ValueError):
        and_()


def test_repeated_filter_calls_are_anded_and_query_is_immutable() -> None:
    base = ODataQuery().filter(eq("A", 1))
    narrowed = base.filter(eq("B", "x"))
    assert base.to_odata() == "$filter=A eq 1"
    assert narrowed.to_odata() == "$filter=A eq 1 and B eq 'x'"


def test_nested_expand_select_orderby_count() -> None:
    query = (
        ODataQuery()
        .expand(
            "PriceLists",
            filter=eq("IsActive", True) & eq("PriceListCode", "STD"),
            select=["PriceListCode", "PriceSale"],
            top=5,
        )
        .expand("OnHands")
        .expand("Variants", expand=ODataQuery().expand("Skus", select=["PartNo"]))
        .order_by("PartNo")
        .order_by("Name", descending=True)
        .count()
    )
    assert query.to_odata() == (
        "$expand=PriceLists($filter=IsActive eq true and PriceListCode eq 'STD';"
        "$select=PriceListCode,PriceSale;$top=5),OnHands,Variants($expand=Skus($select=PartNo))"
        "&$orderby=PartNo,Name desc&$count=true"
    )


def test_empty_query_and_bounds() -> None:
    assert ODataQuery().to_params() == {}
    assert ODataQuery().to_query_string() == ""
    with pytest.raises(ValueError):
        ODataQuery().top(-1)
    with pytest.raises(ValueError):
        ODataQuery().skip(-1)


def test_special_characters_are_percent_encoded() -> None:
    assert ODataQuery().filter(eq("Name", "a&b=c#d+e")).to_query_string() == (
        "$filter=Name%20eq%20'a%26b=c%23d%2Be'"
    )


@pytest.mark.parametrize(
    ("key", "segment"),
    [
        ("100011", "('100011')"),
        ("O'Neil", "('O''Neil')"),
        ("a/b c", "('a%2Fb%20c')"),
        (42, "(42)"),
    ],
)
def test_entity_keys(key: str | int, segment: str) -> None:
    assert entity_key(key) == segment

from __future__ import annotations

import pytest

from norce_simulator.odata import (
    ODataError,
    key_disjunction,
    key_terms,
    parse_expand,
    parse_filter,
    parse_select,
    project,
)

ROWS = [
    {"PartNo": "1", "Status": 1, "IsActive": True, "Name": "O'Neil", "Price": 9.5},
    {"PartNo": "2", "Status": 2, "IsActive": False, "Name": "Bar", "Price": 20},
    {"PartNo": "3", "Status": 1, "IsActive": None, "Name": "Baz", "Price": 1},
]


def matching(expr: str) -> list[str]:
    pred = parse_filter(expr)
    assert pred is not None
    return [r["PartNo"] for r in ROWS if pred(r)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("PartNo eq '2'", ["2"]),
        ("Status eq 1", ["1", "3"]),
        ("Status ne 1", ["2"]),
        ("IsActive eq true", ["1"]),
        ("IsActive eq false", ["2"]),
        ("IsActive eq null", ["3"]),
        ("IsActive ne true", ["2", "3"]),
        ("Status eq 1 and IsActive eq true", ["1"]),
        ("Status eq 2 or PartNo eq '3'", ["2", "3"]),
        ("(Status eq 2 or PartNo eq '3') and Price gt 5", ["2"]),
        ("Name eq 'O''Neil'", ["1"]),
        ("Price eq 9.5", ["1"]),
        ("Price ge 9.5 and Price lt 20", ["1"]),
        ("Status eq true", []),  # a bool is not the number 1
        ("Missing eq null", ["1", "2", "3"]),
    ],
)
def test_filter(expr: str, expected: list[str]) -> None:
    assert matching(expr) == expected


@pytest.mark.parametrize(
    "expr", ["PartNo", "PartNo eq", "PartNo like 'x'", "eq 1", "(Status eq 1", "A eq 'x", "A eq B"]
)
def test_bad_filter(expr: str) -> None:
    with pytest.raises(ODataError):
        parse_filter(expr)


def test_select_and_project() -> None:
    assert parse_select("PartNo, Status") == ["PartNo", "Status"]
    assert project(ROWS[0], ["PartNo", "Nope"]) == {"PartNo": "1"}
    assert parse_select(None) is None


def test_expand_with_nested_options() -> None:
    exps = parse_expand(
        "PriceLists($filter=IsActive eq true and Name eq 'a,b';$top=2;$select=X),OnHands"
    )
    assert [e.name for e in exps] == ["PriceLists", "OnHands"]
    pl = exps[0]
    assert pl.top == 2
    assert pl.select == ["X"]
    assert pl.filter is not None
    assert pl.filter({"IsActive": True, "Name": "a,b"}) is True
    assert pl.filter({"IsActive": True, "Name": "a"}) is False
    assert exps[1].filter is None


@pytest.mark.parametrize("text", ["PriceLists($filter=IsActive eq true", "PriceLists($orderby=X)"])
def test_bad_expand(text: str) -> None:
    with pytest.raises(ODataError):
        parse_expand(text)


@pytest.mark.parametrize(
    "text",
    [
        "PartNo eq 'A'",
        "PartNo eq 'A' or PartNo eq 'B''s' or PartNo eq 12",
        " ( PartNo eq 'x'' or PartNo eq ''y' or PartNo eq '' ) ",
        "PartNo  eq\t'A'  or  PartNo eq -3",
    ],
)
def test_key_terms_reads_a_batch_lookup_in_one_pass(text: str) -> None:
    # The fast form answers exactly what the full parser and the token scan answer.
    assert parse_filter(text) is not None
    assert key_terms(text, "PartNo") == key_disjunction(text, "PartNo")


@pytest.mark.parametrize(
    "text",
    [
        "(PartNo eq 'A'",  # unbalanced: the full parser refuses it
        "PartNo eq 'A')",
        "(PartNo eq 'A') or (PartNo eq 'B')",  # valid, but left to the general path
        "PartNo eq 'A' and PartNo eq 'B'",
        "PartNo eq 'A' or Code eq 'B'",
        "PartNo eq 1.5",
        "PartNo eq true",
        "PartNo ne 'A'",
        "PartNo eq 'A' or",
        "PartNo eq 'A' PartNo eq 'B'",
        "partno eq 'A'",
        "PartNo eq 'A''",
    ],
)
def test_key_terms_leaves_every_other_filter_to_the_parser(text: str) -> None:
    assert key_terms(text, "PartNo") is None

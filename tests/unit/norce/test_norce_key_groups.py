"""Planning batch lookups by key: groups whose request URL stays within the limit."""

from __future__ import annotations

import itertools
from urllib.parse import quote_plus, urlencode

import httpx
import pytest

from norce.odata import ODataQuery, Value, eq, or_
from norce.query import QueryClient, key_filter, key_url_length, plan_key_groups

BASE = "https://demo.api-se.norce.tech/commerce/query/2.0/"
SET = "Products/ProductSkus"


def test_groups_fill_up_to_the_url_limit_whatever_the_keys_hold() -> None:
    # Plain keys (counted without encoding) mixed with keys that need encoding.
    values: list[Value] = []
    for n in range(600):
        values += [f"SKU-{n:05d}", f"O'Neil {n}", f"åäö/{n}?&=", n, f"a.b_c~{n}"]
    query = ODataQuery().select("PartNo")
    groups = plan_key_groups(BASE, SET, query, "PartNo", values, group_size=100, max_url=2000)
    assert [v for g in groups for v in g] == values  # all of them, in order, once
    for group, following in itertools.pairwise(groups):
        assert key_url_length(BASE, SET, query, "PartNo", group) <= 2000
        # full: one more key would pass the limit (or the group is at its size)
        bigger = [*group, following[0]]
        assert len(group) == 100 or key_url_length(BASE, SET, query, "PartNo", bigger) > 2000
    assert key_url_length(BASE, SET, query, "PartNo", groups[-1]) <= 2000


def test_the_counted_length_is_the_url_httpx_sends() -> None:
    query = key_filter(ODataQuery().select("PartNo"), "PartNo", ["SKU-1", "O'Neil å", 7])
    url = BASE + SET + "?" + urlencode(query.to_params(), quote_via=quote_plus)
    sent = httpx.Request("GET", url).url
    assert len(str(sent)) == key_url_length(
        BASE, SET, ODataQuery().select("PartNo"), "PartNo", ["SKU-1", "O'Neil å", 7]
    )


def test_a_page_url_is_encoded_as_quote_plus_encodes_it() -> None:
    # The quick path (plain keys, spaces, quotes) and the general one give the same URL.
    client = QueryClient(None, BASE)  # type: ignore[arg-type]
    for values in (
        ["SKU-1", "a.b_c~d"],
        ["O'Neil", "x y"],
        ["å/ä?&=#%+", "100%", "tab\there"],
        [7, -3, "7"],
    ):
        query = key_filter(ODataQuery().select("PartNo").top(5), "PartNo", values)
        expected = BASE + SET + "?" + urlencode(query.to_params(), quote_via=quote_plus)
        assert client.url_of(SET, query) == expected
    assert client.url_of(SET) == BASE + SET


def test_a_key_filter_renders_as_the_or_chain_it_stands_for() -> None:
    values: list[Value] = ["A", "O'Neil", 7, True, None, 2.5]
    chain = or_(*(eq("PartNo", v) for v in values))
    base = ODataQuery().select("PartNo")
    assert key_filter(base, "PartNo", values).to_params() == base.filter(chain).to_params()
    # ANDed with a filter the query had: parenthesised as the chain would be.
    active = base.filter(eq("IsActive", True))
    assert key_filter(active, "PartNo", values).to_odata() == active.filter(chain).to_odata()
    one = key_filter(active, "PartNo", ["A"]).to_odata()
    assert one == active.filter(eq("PartNo", "A")).to_odata()
    with pytest.raises(ValueError):
        key_filter(base, "Part No", ["A"])  # not a property path
    with pytest.raises(ValueError):
        key_filter(base, "PartNo", [])

"""Group lookups (agents.export.targets): grouping, URL bound, gone = tombstone, paging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from agents.export.targets import (
    EntityLookup,
    build_records,
    group_filter,
    plan_groups,
    url_length,
)
from norce.errors import NorceServerError
from norce.odata import ODataQuery
from norce.query import ODataPage
from tests.support.export_specs import SPECS

BASE = "https://t.api.norce.io/commerce/query/2.0/"


class PagedQuery:
    """Answers ``pages`` like QueryClient over a set of SKUs, ``page_size`` per page."""

    base_url = BASE

    def __init__(
        self,
        skus: dict[str, dict[str, Any]],
        page_size: int = 100,
        *,
        omitted: frozenset[str] = frozenset(),
        single_error: Exception | None = None,
    ) -> None:
        self.skus = skus
        self.omitted = omitted  # held, but left out of group answers (a transient answer)
        self.single_error = single_error  # what a single lookup raises
        self.singles: list[str] = []
        self.page_size = page_size
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def pages(self, entity_set: str, query: ODataQuery | None = None) -> AsyncIterator[Any]:
        assert query is not None
        params = query.to_params()
        wanted = [t.split(" eq ")[1].strip("'") for t in params["$filter"].split(" or ")]
        rows = [self.skus[p] for p in wanted if p in self.skus and p not in self.omitted]
        for start in range(0, max(len(rows), 1), self.page_size):
            self.requests.append((entity_set, params))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            await asyncio.sleep(0.01)
            self.in_flight -= 1
            more = start + self.page_size < len(rows)
            yield ODataPage.model_validate(
                {
                    "value": rows[start : start + self.page_size],
                    "@odata.nextLink": f"{BASE}{entity_set}?$skip={start + 1}" if more else None,
                }
            )

    async def get_entity(
        self, entity_set: str, key: str | int, query: ODataQuery | None = None
    ) -> dict[str, Any] | None:
        self.singles.append(str(key))
        await asyncio.sleep(0)
        if self.single_error is not None:
            raise self.single_error
        return self.skus.get(str(key))  # 404: None, as QueryClient.get_entity answers

    async def iterate(self, entity_set: str, query: ODataQuery | None = None) -> Any:
        yield {"Agreement": "STD", "Name": "Standard", "CurrencyCode": "SEK"}


def sku(part_no: str) -> dict[str, Any]:
    return {
        "PartNo": part_no,
        "PriceLists": [{"PriceListCode": "STD", "PriceSale": 9.0}],
        "OnHands": [],
    }


def test_groups_are_bounded_by_size_and_keep_every_id_once() -> None:
    ids = [f"P{i}" for i in range(120)] + ["P3", "P7"]
    groups = plan_groups(BASE, "sku", ids, group_size=50, max_url=100_000)
    assert [len(g) for g in groups] == [50, 50, 20]
    assert [i for g in groups for i in g] == [f"P{i}" for i in range(120)]


def test_groups_are_cut_so_the_sent_url_stays_within_the_bound() -> None:
    ids = [f"LONG-PART-NUMBER-{i:05d}'x" for i in range(200)]
    max_url = 1500
    groups = plan_groups(BASE, "sku", ids, group_size=1000, max_url=max_url)
    assert len(groups) > 1
    for group in groups:
        sent = httpx.URL(
            BASE + "Products/ProductSkus", params=group_filter("sku", group).to_params()
        )
        assert len(str(sent)) <= max_url
        assert url_length(BASE, "sku", group) == len(str(sent))  # the estimate is exact here
    # and as full as the bound allows: one more id would have passed it
    first = groups[0]
    assert url_length(BASE, "sku", [*first, groups[1][0]]) > max_url


def test_the_group_request_has_the_single_lookups_expand_and_an_or_filter() -> None:
    params = group_filter("sku", ["A", "B'1"]).to_params()
    assert params["$filter"] == "PartNo eq 'A' or PartNo eq 'B''1'"
    assert params["$expand"] == (
        "PriceLists($filter=IsActive eq true),OnHands($filter=IsActive eq true)"
    )
    assert group_filter("customer", ["7", "8"]).to_params() == {"$filter": "Id eq 7 or Id eq 8"}
    with pytest.raises(ValueError):
        plan_groups(BASE, "customer", ["not-a-number"], group_size=5, max_url=2000)


async def test_an_entity_missing_from_the_answer_is_a_tombstone() -> None:
    query = PagedQuery({"A": sku("A"), "C": sku("C")})
    lookup = EntityLookup(query, group_size=50)  # type: ignore[arg-type]
    documents = await lookup.fetch_group("sku", ["A", "B", "C"])
    assert set(documents) == {"A", "B", "C"}
    assert documents["B"] is None
    assert documents["A"] is not None
    assert documents["A"]["PriceLists"][0]["PriceList"]["CurrencyCode"] == "SEK"
    assert len(query.requests) == 1 and query.singles == ["B"]  # confirmed by one lookup
    assert lookup.lookups == 2 and lookup.confirmed_missing == 1
    for spec_records in (
        build_records("sku", "B", documents["B"], SPECS["sku"], event_types=["X"], received_at=1)
    ).records:
        assert spec_records.value is None
        assert ("norce-deleted", b"true") in spec_records.headers


async def test_an_entity_a_group_answer_lacks_but_norce_holds_is_no_tombstone() -> None:
    # issue 23 item 11: a group answer that lacks an entity is not proof it is gone
    query = PagedQuery({"A": sku("A"), "B": sku("B")}, omitted=frozenset({"B"}))
    lookup = EntityLookup(query, group_size=50)  # type: ignore[arg-type]
    documents = await lookup.fetch_group("sku", ["A", "B"])
    assert documents["B"] is not None and documents["B"]["PartNo"] == "B"
    assert documents["B"]["PriceLists"][0]["PriceList"]["CurrencyCode"] == "SEK"
    assert query.singles == ["B"] and lookup.confirmed_missing == 0


async def test_a_failing_confirmation_raises_instead_of_deleting() -> None:
    query = PagedQuery(
        {"A": sku("A")}, single_error=NorceServerError("Norce answered 503", status_code=503)
    )
    lookup = EntityLookup(query, group_size=50)  # type: ignore[arg-type]
    with pytest.raises(NorceServerError):
        await lookup.fetch_group("sku", ["A", "B"])


async def test_next_link_pages_are_followed() -> None:
    ids = [f"P{i}" for i in range(25)]
    query = PagedQuery({i: sku(i) for i in ids}, page_size=10)
    lookup = EntityLookup(query, group_size=50)  # type: ignore[arg-type]
    documents = await lookup.fetch_group("sku", ids)
    assert all(documents[i] is not None for i in ids)
    assert len(query.requests) == 3  # one group, three pages
    assert lookup.lookups == 3


async def test_group_requests_share_the_concurrency_bound() -> None:
    query = PagedQuery({})
    lookup = EntityLookup(query, concurrency=2, group_size=5)  # type: ignore[arg-type]
    groups = lookup.plan("sku", [f"P{i}" for i in range(40)])
    assert len(groups) == 8
    answers = await asyncio.gather(*(lookup.fetch_group("sku", g) for g in groups))
    assert all(v is None for a in answers for v in a.values())
    assert query.max_in_flight == 2


def test_the_real_client_sends_the_filter_percent_encoded() -> None:
    # what the simulator and Norce parse: spaces and quotes survive the encoding
    sent = httpx.URL(BASE + "Products/ProductSkus", params=group_filter("sku", ["A B"]).to_params())
    assert parse_qs(urlsplit(str(sent)).query)["$filter"] == ["PartNo eq 'A B'"]

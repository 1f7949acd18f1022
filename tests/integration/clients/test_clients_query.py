"""QueryClient and the OData builder against the simulator over real HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from norce.client import NorceClient
from norce.connect_header import ConnectHeader
from norce.errors import NorceBadRequest, NorceNotFound
from norce.odata import ODataQuery, eq, ne, not_
from norce_simulator import SimulatorServer

SKUS = "Products/ProductSkus"
PRICES = "Products/ProductSkuPriceLists"


def price(part_no: str, code: str, sale: float, active: bool = True) -> dict[str, object]:
    return {
        "PartNo": part_no,
        "PriceListCode": code,
        "QuantityBreak": 1,
        "PriceSale": sale,
        "CurrencyCode": "SEK",
        "IsActive": active,
    }


@pytest.fixture
async def paged_sim(start_sim: Callable[..., Awaitable[SimulatorServer]]) -> SimulatorServer:
    sim = await start_sim(page_size=100)
    rows = [price(f"{i:04d}", "STD", float(i)) for i in range(250)]
    rows += [price(f"{i:04d}", "B2B", float(i) / 2) for i in range(120)]
    sim.state.seed({"price": rows})
    return sim


@pytest.fixture
def paged(make_client: Callable[..., NorceClient], paged_sim: SimulatorServer) -> NorceClient:
    return make_client(paged_sim)


async def test_iterate_follows_next_link_over_pages(
    paged: NorceClient, paged_sim: SimulatorServer
) -> None:
    query = ODataQuery().filter(eq("PriceListCode", "STD")).select("PartNo", "PriceSale")
    rows = [row async for row in paged.query.iterate(PRICES, query)]
    assert len(rows) == 250
    assert [row["PartNo"] for row in rows] == [f"{i:04d}" for i in range(250)]
    assert all(set(row) == {"PartNo", "PriceSale"} for row in rows)
    assert rows[249]["PriceSale"] == 249.0
    assert paged_sim.state.calls[f"query:{PRICES}"] == 3


async def test_pages_top_and_max_pages(paged: NorceClient) -> None:
    sizes = [len(page.value) async for page in paged.query.pages(PRICES)]
    assert sizes == [100, 100, 100, 70]

    first = await paged.query.page(PRICES, ODataQuery().count())
    assert first.count == 370
    assert first.next_link is not None
    assert parse_qs(urlsplit(first.next_link).query)["$skip"] == ["100"]

    top = ODataQuery().filter(eq("PriceListCode", "B2B")).top(150)
    assert len([row async for row in paged.query.iterate(PRICES, top)]) == 120
    capped = ODataQuery().top(150)
    assert len([row async for row in paged.query.iterate(PRICES, capped)]) == 150
    two_pages = [row async for row in paged.query.iterate(PRICES, max_pages=2)]
    assert len(two_pages) == 200

    skipped = ODataQuery().filter(eq("PriceListCode", "STD"), ne("PartNo", "0000")).skip(240)
    assert [row["PartNo"] async for row in paged.query.iterate(PRICES, skipped)] == [
        "0241",
        "0242",
        "0243",
        "0244",
        "0245",
        "0246",
        "0247",
        "0248",
        "0249",
    ]


async def test_single_entity_with_filtered_expand(norce: NorceClient, sim: SimulatorServer) -> None:
    sim.state.seed(
        {
            "sku": [{"PartNo": "100011", "EanCode": "7300000000017"}],
            "price": [price("100011", "STD", 99.0), price("100011", "OLD", 120.0, active=False)],
            "stock": [{"PartNo": "100011", "WarehouseCode": "W1", "OnhandValue": 4}],
        }
    )
    query = (
        ODataQuery()
        .select("PartNo", "EanCode")
        .expand("PriceLists", filter=eq("IsActive", True), select=["PriceListCode", "PriceSale"])
        .expand("OnHands", select=["WarehouseCode", "OnhandValue"])
    )
    sku = await norce.query.get_entity(SKUS, "100011", query)
    assert sku == {
        "PartNo": "100011",
        "EanCode": "7300000000017",
        "PriceLists": [{"PriceListCode": "STD", "PriceSale": 99.0}],
        "OnHands": [{"WarehouseCode": "W1", "OnhandValue": 4}],
    }


async def test_single_entity_404(norce: NorceClient, sim: SimulatorServer) -> None:
    assert await norce.query.get_entity(SKUS, "no-such-sku") is None
    with pytest.raises(NorceNotFound) as info:
        await norce.query.get_entity(SKUS, "no-such-sku", missing_ok=False)
    assert info.value.status_code == 404
    assert "not found" in (info.value.description or "")
    assert sim.state.calls[f"query:{SKUS}"] == 2


async def test_keys_and_literals_with_quotes_survive_the_round_trip(
    norce: NorceClient, sim: SimulatorServer
) -> None:
    header = ConnectHeader(account_id=1, customer_fields_that_are_set=["Code", "LastName"])
    response = await norce.connect.import_customers(
        header, [{"Code": "O'Neil & Co/1", "LastName": "O'Neil"}]
    )
    await norce.connect.wait_for_job(response.job_id_int, poll_interval=0.02, max_wait=10)

    customer = await norce.query.get_entity("Customers/Customers", "O'Neil & Co/1")
    assert customer is not None and customer["LastName"] == "O'Neil"
    query = ODataQuery().filter(eq("LastName", "O'Neil")).select("Code")
    found = [row async for row in norce.query.iterate("Customers/Customers", query)]
    assert found == [{"Code": "O'Neil & Co/1"}]


async def test_unsupported_query_is_a_bad_request(norce: NorceClient) -> None:
    # The simulator's OData subset has no `not`; its 400 must surface as NorceBadRequest.
    query = ODataQuery().filter(not_(eq("PartNo", "1")))
    with pytest.raises(NorceBadRequest) as info:
        await norce.query.page(SKUS, query)
    assert info.value.status_code == 400
    assert info.value.description

from __future__ import annotations

import pytest

SKUS = [
    {
        "PartNo": str(1000 + i),
        "Status": 1 if i % 2 else 2,
        "IsBuyable": i % 3 == 0,
        "EanCode": f"E{i}",
    }
    for i in range(7)
]
PRICES = [
    {"PartNo": "1001", "PriceListCode": "STD", "PriceSale": 10, "IsActive": True},
    {"PartNo": "1001", "PriceListCode": "OLD", "PriceSale": 12, "IsActive": False},
    {"PartNo": "1002", "PriceListCode": "STD", "PriceSale": 20},
]
STOCK = [{"PartNo": "1001", "WarehouseCode": "WH1", "OnhandValue": 4}]


@pytest.fixture
async def qapi(start_sim, make_api):
    sim = await start_sim(page_size=3)
    sim.state.seed({"sku": SKUS, "price": PRICES, "stock": STOCK})
    return make_api(sim)


async def test_list_paging_with_next_link(qapi) -> None:
    r = await qapi.query("Products/ProductSkus")
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"].endswith("/commerce/query/2.0/$metadata#Products/ProductSkus")
    assert [s["PartNo"] for s in body["value"]] == ["1000", "1001", "1002"]
    link = body["@odata.nextLink"]
    assert link.startswith(qapi.sim.query_url + "Products/ProductSkus?")
    assert "%24skip=3" in link or "$skip=3" in link
    seen = [s["PartNo"] for s in body["value"]]
    headers = await qapi.auth()
    while "@odata.nextLink" in body:
        body = (await qapi.http.get(body["@odata.nextLink"], headers=headers)).json()
        seen += [s["PartNo"] for s in body["value"]]
    assert seen == [s["PartNo"] for s in SKUS]


async def test_top_and_skip(qapi) -> None:
    body = (await qapi.query("Products/ProductSkus", **{"$top": 4, "$skip": 1})).json()
    assert [s["PartNo"] for s in body["value"]] == ["1001", "1002", "1003"]
    headers = await qapi.auth()
    body = (await qapi.http.get(body["@odata.nextLink"], headers=headers)).json()
    assert [s["PartNo"] for s in body["value"]] == ["1004"]
    assert "@odata.nextLink" not in body
    body = (await qapi.query("Products/ProductSkus", **{"$top": 2, "$count": "true"})).json()
    assert [s["PartNo"] for s in body["value"]] == ["1000", "1001"]
    assert body["@odata.count"] == 7
    assert "@odata.nextLink" not in body


async def test_filter_and_select(qapi) -> None:
    r = await qapi.query(
        "Products/ProductSkus",
        **{"$filter": "Status eq 2 and IsBuyable eq true", "$select": "PartNo,Status"},
    )
    assert r.json()["value"] == [{"PartNo": "1000", "Status": 2}, {"PartNo": "1006", "Status": 2}]
    r = await qapi.query("Products/ProductSkus", **{"$filter": "PartNo ne '1000' and Status ne 1"})
    assert [s["PartNo"] for s in r.json()["value"]] == ["1002", "1004", "1006"]
    r = await qapi.query(
        "Products/ProductSkuPriceLists",
        **{"$filter": "PriceListCode eq 'STD'", "$select": "PartNo,PriceSale,PriceListId"},
    )
    assert r.json()["value"] == [
        {"PartNo": "1001", "PriceSale": 10, "PriceListId": 1},
        {"PartNo": "1002", "PriceSale": 20, "PriceListId": 1},
    ]


async def test_single_entity_with_expand(qapi) -> None:
    r = await qapi.query(
        "Products/ProductSkus('1001')",
        **{"$expand": "PriceLists($filter=IsActive eq true),OnHands"},
    )
    assert r.status_code == 200
    sku = r.json()
    assert "value" not in sku
    assert sku["PartNo"] == "1001"
    assert [(p["PriceListCode"], p["PriceSale"]) for p in sku["PriceLists"]] == [("STD", 10)]
    assert [(s["WarehouseCode"], s["OnhandValue"]) for s in sku["OnHands"]] == [("WH1", 4)]
    r = await qapi.query(
        "Products/ProductSkus('1001')", **{"$expand": "PriceLists", "$select": "PartNo"}
    )
    assert set(r.json()) == {"PartNo", "PriceLists"}
    assert len(r.json()["PriceLists"]) == 2


async def test_missing_key_is_404_with_odata_error(qapi) -> None:
    r = await qapi.query("Products/ProductSkus('nope')")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NotFound"
    assert "nope" in r.json()["error"]["message"]
    r = await qapi.query("Products/Unknown")
    assert r.status_code == 404


@pytest.mark.parametrize(
    "params",
    [{"$filter": "Status eq"}, {"$top": "-1"}, {"$expand": "Nope"}, {"$skip": "x"}],
)
async def test_bad_options_are_400(qapi, params) -> None:
    r = await qapi.query("Products/ProductSkus", **params)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest"


async def test_auth_required(qapi) -> None:
    r = await qapi.http.get(qapi.sim.query_url + "Products/ProductSkus")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "Unauthorized"


async def test_rate_limit_429(start_sim, make_api) -> None:
    sim = await start_sim(query_rate_limit_per_s=2)
    api = make_api(sim)
    codes = [(await api.query("Products/ProductSkus")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = await api.query("Products/ProductSkus")
    assert r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "429"


async def test_injected_query_429_with_retry_after(qapi) -> None:
    qapi.sim.state.set_faults({"query": {"error_next": 2, "status": 429, "retry_after_s": 3}})
    for _ in range(2):
        r = await qapi.query("Products/ProductSkus")
        assert (r.status_code, r.headers["Retry-After"]) == (429, "3")
    assert (await qapi.query("Products/ProductSkus")).status_code == 200


async def test_query_reads_what_imports_wrote(api) -> None:
    await api.run(
        "Product/ImportProducts",
        [{"Code": "P1", "Variants": [{"Skus": [{"PartNo": "9", "EanCode": "E9"}]}]}],
    )
    await api.run("Customer/ImportCustomers", [{"Code": "C1", "EmailAddress": "c@x.se"}])
    sku = (await api.query("Products/ProductSkus('9')")).json()
    assert (sku["PartNo"], sku["EanCode"], sku["ProductCode"], sku["IsActive"]) == (
        "9",
        "E9",
        "P1",
        True,
    )
    prod = (await api.query("Products/Products('P1')", **{"$expand": "Skus"})).json()
    assert [s["PartNo"] for s in prod["Skus"]] == ["9"]
    cust = (await api.query("Customers/Customers(1)")).json()
    assert (cust["Code"], cust["EmailAddress"]) == ("C1", "c@x.se")
    by_code = (await api.query("Customers/Customers('C1')")).json()
    assert by_code["Id"] == 1
    listed = (await api.query("Customers/Customers", **{"$filter": "Id eq 1"})).json()
    assert [c["Code"] for c in listed["value"]] == ["C1"]


async def test_a_group_lookup_is_one_call_answered_from_the_key_index(qapi) -> None:
    # what EntityLookup.fetch_group sends: an or-chain of keys with the single lookup's $expand
    before = qapi.sim.state.calls["query:Products/ProductSkus"]
    r = await qapi.query(
        "Products/ProductSkus",
        **{
            "$filter": "PartNo eq '1002' or PartNo eq 'nope' or (PartNo eq '1001')",
            "$expand": "PriceLists($filter=IsActive eq true),OnHands($filter=IsActive eq true)",
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"].endswith("$metadata#Products/ProductSkus")
    assert "@odata.nextLink" not in body
    by_part = {s["PartNo"]: s for s in body["value"]}
    assert set(by_part) == {"1001", "1002"}  # 'nope' is simply absent, as in Norce
    assert [p["PriceListCode"] for p in by_part["1001"]["PriceLists"]] == ["STD"]
    assert [s["WarehouseCode"] for s in by_part["1001"]["OnHands"]] == ["WH1"]
    assert by_part["1002"]["OnHands"] == []
    assert qapi.sim.state.calls["query:Products/ProductSkus"] - before == 1


async def test_a_group_lookup_larger_than_a_page_has_a_next_link(qapi) -> None:
    wanted = [s["PartNo"] for s in SKUS]  # 7 SKUs, page size 3
    r = await qapi.query(
        "Products/ProductSkus", **{"$filter": " or ".join(f"PartNo eq '{p}'" for p in wanted)}
    )
    body = r.json()
    seen = [s["PartNo"] for s in body["value"]]
    headers = await qapi.auth()
    while "@odata.nextLink" in body:
        body = (await qapi.http.get(body["@odata.nextLink"], headers=headers)).json()
        seen += [s["PartNo"] for s in body["value"]]
    assert seen == wanted
    # a filter that is not a pure key disjunction still scans (and still works)
    r = await qapi.query(
        "Products/ProductSkus", **{"$filter": "PartNo eq '1001' or EanCode eq 'E2'"}
    )
    assert [s["PartNo"] for s in r.json()["value"]] == ["1001", "1002"]


async def test_a_group_lookup_from_the_index_stays_as_strict_as_the_parser(qapi) -> None:
    async def part_nos(flt: str) -> list[str]:
        r = await qapi.query("Products/ProductSkus", **{"$filter": flt, "$select": "PartNo"})
        assert r.status_code == 200, r.text
        return [s["PartNo"] for s in r.json()["value"]]

    # Each entity once, however often the filter names it; a number never equals the
    # string key '1001' (OData compares types), so only the quoted literal finds it.
    assert await part_nos("PartNo eq 1001 or PartNo eq '1001' or PartNo eq '1001'") == ["1001"]
    assert await part_nos("PartNo eq 1001") == []
    assert await part_nos("(PartNo eq '1003' or PartNo eq 'x'' or PartNo eq ''1002')") == ["1003"]
    # What the parser refuses is refused on the index's path too.
    for bad in ("(PartNo eq '1001'", "PartNo eq '1001')", "PartNo eq '1001' or"):
        r = await qapi.query("Products/ProductSkus", **{"$filter": bad})
        assert r.status_code == 400, bad


async def test_a_price_list_whose_code_holds_querys_name_for_it_is_found(
    start_sim, make_api
) -> None:
    # Query names a price list's code Agreement; a code that itself says "Agreement" is a
    # value, not the property, and must be looked up as written.
    sim = await start_sim(price_lists=("STD", "Agreement-B2B"))
    api = make_api(sim)
    r = await api.query(
        "Application/ClientPriceLists",
        **{"$filter": "Agreement eq 'Agreement-B2B' or Agreement eq 'STD'", "$select": "Agreement"},
    )
    assert r.status_code == 200, r.text
    assert sorted(p["Agreement"] for p in r.json()["value"]) == ["Agreement-B2B", "STD"]

from __future__ import annotations

PRICES = "Product/ImportSkuPriceLists"
STOCK = "Product/ImportOnhands"
PRODUCTS = "Product/ImportProducts"


def price(part: str, lst: str = "STD", qb: int = 1, **values) -> dict:
    return {"PartNo": part, "PriceListCode": lst, "QuantityBreak": qb, **values}


def stock(part: str, wh: str = "WH1", loc: str = "", **values) -> dict:
    return {"PartNo": part, "WarehouseCode": wh, "LocationCode": loc, **values}


def skus(*part_nos: str) -> dict:
    """Seed data for SKUs: Norce ignores prices and stock of a SKU it does not have."""
    return {"sku": [{"PartNo": p} for p in part_nos]}


def product(code: str, *part_nos: str, **values) -> dict:
    skus = [{"PartNo": p, "EanCode": f"EAN{p}", "Status": 1} for p in part_nos]
    return {"Code": code, "ManufacturerCode": "M", "Variants": [{"Skus": skus}], **values}


async def test_unlisted_price_fields_stay_untouched(api) -> None:
    state = api.sim.state
    api.sim.state.seed(skus("A"))
    state.seed({"price": [price("A", PriceSale=10, CostPurchase=5, CurrencyCode="SEK")]})
    header = {"AccountId": 1, "SkuPriceListFieldsThatAreSet": [3]}
    job = await api.run(PRICES, [price("A", PriceSale=12, CostPurchase=99)], header)
    assert job["StatusId"] == 2
    row = state.item("price", ("A", "STD", 1))
    assert row["PriceSale"] == 12
    assert row["CostPurchase"] == 5
    assert row["CurrencyCode"] == "SEK"
    hist = state.history("price", "A|STD|1")
    assert [h["job_id"] for h in hist] == [None, job["JobId"]]
    assert hist[1]["values"] == {"PriceSale": 12.0}


async def test_listed_but_missing_price_stays(api) -> None:
    api.sim.state.seed(skus("A"))
    # A listed field the row lacks is null, and a null price never overwrites in Norce.
    state = api.sim.state
    state.seed({"price": [price("A", PriceSale=10, CostPurchase=5, CostUnit=4)]})
    header = {"AccountId": 1, "SkuPriceListFieldsThatAreSet": [3, 4]}
    await api.run(PRICES, [price("A", PriceSale=11)], header)
    row = state.item("price", "A|STD|1")
    assert (row["PriceSale"], row["CostPurchase"], row["CostUnit"]) == (11, 5, 4)


async def test_without_field_list_every_given_field_is_written(api) -> None:
    state = api.sim.state
    api.sim.state.seed(skus("A"))
    state.seed({"price": [price("A", PriceSale=10, CostPurchase=5, CostUnit=4)]})
    await api.run(PRICES, [price("A", PriceSale=11, CostPurchase=6)], {"AccountId": 1})
    row = state.item("price", "A|STD|1")
    assert (row["PriceSale"], row["CostPurchase"], row["CostUnit"]) == (11, 6, 4)


async def test_null_or_zero_price_never_overwrites(api) -> None:
    state = api.sim.state
    api.sim.state.seed(skus("A"))
    state.seed({"price": [price("A", PriceSale=10, CostPurchase=5, PriceRecommended=20)]})
    header = {"AccountId": 1, "SkuPriceListFieldsThatAreSet": ["PriceSale", 4, 6]}
    update = {"PriceSale": 0, "CostPurchase": None, "PriceRecommended": 15}
    await api.run(PRICES, [price("A", **update)], header)
    row = state.item("price", "A|STD|1")
    assert (row["PriceSale"], row["CostPurchase"], row["PriceRecommended"]) == (10, 5, 15)


async def test_mandatory_price_fields_ignore_a_row_whole(api) -> None:
    state = api.sim.state
    api.sim.state.seed(skus("A", "B"))
    seed = price("A", PriceSale=10, CostPurchase=5, PriceRecommended=20)
    state.seed({"price": [seed, {**seed, "PartNo": "B"}]})
    header = {
        "AccountId": 1,
        "SkuPriceListFieldsThatAreSet": [3, 4, 6, "FullfileResetInheritance"],
        "IgnoreSkuPriceListFieldsWhenEmpty": ["CostPurchase"],
        "SerializationType": "Json",
    }
    lacking = price("A", PriceSale=11, CostPurchase=None, PriceRecommended=15)
    complete = price("B", PriceSale=12, CostPurchase=6, PriceRecommended=16)
    await api.run(PRICES, [lacking, complete], header)
    a, b = state.item("price", "A|STD|1"), state.item("price", "B|STD|1")
    assert (a["PriceSale"], a["PriceRecommended"]) == (10, 20)  # ignored whole
    assert (b["PriceSale"], b["CostPurchase"], b["PriceRecommended"]) == (12, 6, 16)


async def test_unlisted_stock_fields_stay_untouched(api) -> None:
    state = api.sim.state
    api.sim.state.seed(skus("A"))
    state.seed({"stock": [stock("A", OnhandValue=3, IncomingValue=7, LeadTimeDayCount=2)]})
    header = {"AccountId": 1, "SkuOnhandFieldsThatAreSet": [3]}
    await api.run(STOCK, [stock("A", OnhandValue=9, IncomingValue=0, LeadTimeDayCount=9)], header)
    row = state.item("stock", "A|WH1|")
    assert (row["OnhandValue"], row["IncomingValue"], row["LeadTimeDayCount"]) == (9, 7, 2)


async def test_full_file_prices_deactivate_only_lacking_rows_of_imported_lists(api) -> None:
    state = api.sim.state
    api.sim.state.seed(skus("A", "B", "C", "D"))
    state.seed(
        {
            "price": [
                price("A", PriceSale=1),
                price("A", qb=10, PriceSale=0.9),
                price("B", PriceSale=2),
                price("C", PriceSale=3),
                price("A", "CAMPAIGN", PriceSale=0.5),
                price("D", "CAMPAIGN", PriceSale=0.7),
            ]
        }
    )
    header = {"AccountId": 1, "FullFile": True, "SkuPriceListFieldsThatAreSet": [3]}
    job = await api.run(PRICES, [price("A", PriceSale=1.5), price("B", PriceSale=2)], header)
    assert job["StatusId"] == 2
    inactive = sorted(k for k, r in state.items["price"].items() if r["IsActive"] is False)
    assert inactive == ["A|STD|10", "C|STD|1"]
    for key in ("A|CAMPAIGN|1", "D|CAMPAIGN|1"):  # another price list: not touched at all
        assert len(state.history("price", key)) == 1
        assert state.item("price", key)["IsActive"] is True
    last = state.history("price", "C|STD|1")[-1]
    assert (last["op"], last["job_id"], last["values"]) == (
        "deactivate",
        job["JobId"],
        {"IsActive": False},
    )
    assert state.item("price", "C|STD|1")["PriceSale"] == 3  # only IsActive changed


async def test_full_file_stock_deactivates_only_lacking_rows_of_imported_locations(api) -> None:
    state = api.sim.state
    api.sim.state.seed(skus("A", "B", "C"))
    state.seed(
        {
            "stock": [
                stock("A", OnhandValue=1),
                stock("B", OnhandValue=1),
                stock("A", "WH1", "L2", OnhandValue=1),
                stock("B", "WH2", OnhandValue=1),
            ]
        }
    )
    header = {"AccountId": 1, "FullFile": True, "SkuOnhandFieldsThatAreSet": [3]}
    await api.run(STOCK, [stock("A", OnhandValue=5), stock("C", OnhandValue=2)], header)
    active = {k: r["IsActive"] for k, r in state.items["stock"].items()}
    assert active == {
        "A|WH1|": True,
        "B|WH1|": False,
        "A|WH1|L2": True,
        "B|WH2|": True,
        "C|WH1|": True,
    }


async def test_full_file_products_deactivate_missing_products_and_skus(api) -> None:
    state = api.sim.state
    await api.run(PRODUCTS, [product("P1", "1", "2"), product("P2", "3")])
    assert sorted(state.items["sku"]) == ["1", "2", "3"]
    header = {"AccountId": 1, "FullFile": True}
    await api.run(PRODUCTS, [product("P1", "1", "2")], header)
    assert {k: r["IsActive"] for k, r in state.items["product"].items()} == {
        "P1": True,
        "P2": False,
    }
    assert {k: r["IsActive"] for k, r in state.items["sku"].items()} == {
        "1": True,
        "2": True,
        "3": False,
    }
    # Importing P2 again brings it (and its SKU) back.
    await api.run(PRODUCTS, [product("P2", "3")])
    assert state.item("product", "P2")["IsActive"] is True
    assert state.item("sku", "3")["IsActive"] is True


async def test_product_field_selection(api) -> None:
    state = api.sim.state
    await api.run(PRODUCTS, [product("P1", "1", ManufacturerName="Acme", Alias="old")])
    header = {"AccountId": 1, "ProductFieldsThatAreSet": [2], "SkuFieldsThatAreSet": [5]}
    changed = product("P1", "1", ManufacturerName="Other", Alias="new")
    changed["Variants"][0]["Skus"][0] |= {"EanCode": "NEW", "Status": 9}
    await api.run(PRODUCTS, [changed], header)
    p = state.item("product", "P1")
    assert (p["Alias"], p["ManufacturerName"]) == ("new", "Acme")
    s = state.item("sku", "1")
    assert (s["EanCode"], s["Status"]) == ("EAN1", 1)  # Variants (4) not listed: SKUs untouched
    header["ProductFieldsThatAreSet"] = [2, 4]
    await api.run(PRODUCTS, [changed], header)
    s = state.item("sku", "1")
    assert (s["EanCode"], s["Status"], s["ProductCode"]) == ("NEW", 1, "P1")


async def test_customers_ids_and_field_selection(api) -> None:
    state = api.sim.state
    rows = [
        {"Code": "C1", "EmailAddress": "a@x.se", "FirstName": "Ann"},
        {"Code": "C2", "EmailAddress": "b@x.se", "FirstName": "Bo"},
        {"Code": "C3", "EmailAddress": "no-at-sign"},
    ]
    r = await api.post_import("Customer/ImportCustomers", rows)
    assert r.json()["ValidationSummary"]["NrOfValidationFailures"] == 1
    await api.wait_job(int(r.json()["JobId"]))
    assert [state.item("customer", c)["Id"] for c in ("C1", "C2")] == [1, 2]
    header = {"AccountId": 1, "CustomerFieldsThatAreSet": [3]}
    await api.run(
        "Customer/ImportCustomers",
        [{"Code": "C1", "EmailAddress": "new@x.se", "FirstName": "X"}],
        header,
    )
    c1 = state.item("customer", "C1")
    assert (c1["Id"], c1["EmailAddress"], c1["FirstName"]) == (1, "new@x.se", "Ann")


async def test_supplier_and_pricelist_imports(api) -> None:
    state = api.sim.state
    job = await api.run(
        "Supplier/ImportProducts",
        [{"PartNo": "S1", "Price": 3.5}, {"PartNo": "S2", "SupplierId": 8}],
        {"AccountId": 2, "SupplierId": 7},
    )
    assert job["StatusId"] == 2
    assert sorted(state.items["supplier"]) == ["7|S1", "8|S2"]
    assert state.item("supplier", "7|S1")["Price"] == 3.5
    job = await api.run("Product/ImportPriceLists", [{"PriceListCode": "STD", "Name": "Standard"}])
    assert state.item("pricelist", "STD")["Name"] == "Standard"


async def test_history_proves_nothing_lost_and_never_older(api) -> None:
    state = api.sim.state
    n = 200
    state.seed(skus(*(f"P{i}" for i in range(n))))
    job_ids = []
    for version in range(1, 4):
        rows = [price(f"P{i}", PriceSale=version * 100 + i) for i in range(n)]
        job_ids.append((await api.run(PRICES, rows))["JobId"])
    assert len(state.items["price"]) == n
    for i in range(n):
        hist = state.history("price", f"P{i}|STD|1")
        assert [h["job_id"] for h in hist] == job_ids
        assert [h["values"]["PriceSale"] for h in hist] == [100 + i, 200 + i, 300 + i]
        assert [h["seq"] for h in hist] == sorted(h["seq"] for h in hist)
    body = await api.control("GET", "history/price?key=P7%7CSTD%7C1")
    assert [h["values"]["PriceSale"] for h in body["history"]] == [107, 207, 307]


async def test_rows_with_unknown_references_are_ignored_silently(api) -> None:
    # norce-api.md "Rows Norce ignores": a price whose SKU or price list does not exist,
    # stock whose SKU does not exist. The job still succeeds and its log says nothing.
    state = api.sim.state
    state.seed(skus("KNOWN"))
    rows = [
        price("KNOWN", PriceSale=1),
        price("GHOST", PriceSale=2),
        price("KNOWN", "NO-SUCH-LIST", PriceSale=3),
    ]
    job = await api.run(PRICES, rows)
    assert (job["StatusId"], job["Totals"], job["Fail"], job["Inserts"]) == (2, 3, 0, 1)
    assert sorted(state.items["price"]) == ["KNOWN|STD|1"]
    assert state.history("price", "GHOST|STD|1") == []
    stock_job = await api.run(STOCK, [stock("GHOST", OnhandValue=1), stock("KNOWN", OnhandValue=2)])
    assert (stock_job["StatusId"], stock_job["Inserts"]) == (2, 1)
    assert sorted(state.items["stock"]) == ["KNOWN|WH1|"]
    for job_id in (job["JobId"], stock_job["JobId"]):
        log = await api.job_log(job_id)
        assert [e["Message"] for e in log] == ["Starting import.", "Import finished."]
    # Once the price list exists (an ImportPriceLists job), its prices are taken.
    await api.run("Product/ImportPriceLists", [{"PriceListCode": "NO-SUCH-LIST"}])
    await api.run(PRICES, [price("KNOWN", "NO-SUCH-LIST", PriceSale=3)])
    assert state.item("price", "KNOWN|NO-SUCH-LIST|1")["PriceSale"] == 3
    # The default tenant has the price lists of SimulatorConfig.price_lists.
    assert sorted(state.items["pricelist"]) == ["NO-SUCH-LIST", "STD"]


async def test_price_list_heads_follow_their_field_list(api) -> None:
    state = api.sim.state
    header = {"AccountId": 1, "PriceListFieldsThatAreSet": ["Name", 1]}
    row = {"PriceListCode": "EUR-B2B", "Name": "B2B", "CurrencyCode": "EUR", "Description": "x"}
    job = await api.run("Product/ImportPriceLists", [row], header)
    assert job["StatusId"] == 2
    head = state.item("pricelist", "EUR-B2B")
    assert (head["Name"], head["CurrencyCode"], head.get("Description")) == ("B2B", "EUR", None)
    r = await api.post_import("Product/ImportPriceLists", [row], {**header, "FullFile": True})
    assert r.status_code == 400  # no FullFile for price list heads
    answer = await api.query("Application/ClientPriceLists('EUR-B2B')", **{"$select": "Name"})
    assert answer.json() == {"Name": "B2B"}
    # Query names the code Agreement (norce-api.md).
    listed = await api.query(
        "Application/ClientPriceLists",
        **{"$filter": "Agreement eq 'EUR-B2B'", "$select": "Agreement"},
    )
    assert listed.json()["value"] == [{"Agreement": "EUR-B2B"}]


async def test_companies_match_on_code_and_mind_is_customer_list_delta(api) -> None:
    state = api.sim.state
    path = "Customer/ImportCompanies"
    header = {"AccountId": 1}
    new = {"Code": "C1", "Name": "Acme", "OrganizationNo": "556000-0001"}
    lacking = {"Code": "C2", "Name": "No org no"}
    job = await api.run(path, [{**new, "Customers": ["U1", "U2"]}, lacking], header)
    assert (job["StatusId"], job["Inserts"], job["Fail"]) == (2, 1, 1)
    log = await api.job_log(job["JobId"])
    assert any("OrganizationNo missing" in e["Message"] for e in log if e["SeverityId"] == 3)
    assert state.item("company", "C2") is None
    company = state.item("company", "C1")
    assert company["Id"] == 1 and company["IsActive"] is True
    # IsCustomerListDelta true: U3 is added, U1 and U2 stay.
    await api.run(path, [{"Code": "C1", "Customers": ["U3"], "IsCustomerListDelta": True}])
    active = {r["Code"]: r["IsActive"] for r in state.item("company", "C1")["Customers"]}
    assert active == {"U1": True, "U2": True, "U3": True}
    # Default (false): the relations the row leaves out are deactivated.
    await api.run(path, [{"Code": "C1", "Customers": ["U2"]}])
    active = {r["Code"]: r["IsActive"] for r in state.item("company", "C1")["Customers"]}
    assert active == {"U1": False, "U2": True, "U3": False}
    # Field selection: only the listed fields are written.
    only_name = {"AccountId": 1, "CompanyFieldsThatAreSet": ["Name"]}
    await api.run(path, [{"Code": "C1", "Name": "Acme AB", "EmailAddress": "a@b.se"}], only_name)
    company = state.item("company", "C1")
    assert (company["Name"], company.get("EmailAddress")) == ("Acme AB", None)
    assert (await api.post_import(path, [new], {**header, "FullFile": True})).status_code == 400
    # Query names the code CompanyCode.
    answer = await api.query(
        "Customers/CustomerCompanies", **{"$filter": "CompanyCode eq 'C1'", "$select": "Id,Name"}
    )
    assert answer.json()["value"] == [{"Id": 1, "Name": "Acme AB"}]

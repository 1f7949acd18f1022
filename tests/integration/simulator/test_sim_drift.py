"""Drift made outside any job (the reconcile tests' tools), and Query's QtyBreak."""

from __future__ import annotations

PRICES = [
    {"PartNo": "1", "PriceListCode": "STD", "QuantityBreak": 1, "PriceSale": 3},
    {"PartNo": "1", "PriceListCode": "STD", "QuantityBreak": 10, "PriceSale": 2},
    {"PartNo": "2", "PriceListCode": "STD", "QuantityBreak": 1, "PriceSale": 5},
]
SET = "Products/ProductSkuPriceLists"


async def test_edit_and_delete_items_outside_any_job(api) -> None:
    await api.control("POST", "seed", {"price": PRICES})
    edited = await api.control("PATCH", "items/price?key=1%7CSTD%7C1", {"PriceSale": 9})
    assert edited["PriceSale"] == 9
    assert (await api.control("GET", "items/price?key=1%7CSTD%7C1"))["PriceSale"] == 9
    [*_, last] = (await api.control("GET", "history/price?key=1%7CSTD%7C1"))["history"]
    assert (last["op"], last["job_id"], last["values"]) == ("edit", None, {"PriceSale": 9})
    assert await api.control("DELETE", "items/price?key=2%7CSTD%7C1") == {"deleted": "2|STD|1"}
    page = (await api.query(SET)).json()["value"]
    assert sorted((r["PartNo"], r["QtyBreak"]) for r in page) == [("1", 1), ("1", 10)]
    # No job was made, no key field may change, unknown items are 404.
    assert (await api.control("GET", "stats"))["jobs"]["total"] == 0
    bad = await api.http.patch(
        f"{api.sim.url}/_sim/items/price?key=1%7CSTD%7C1", json={"PartNo": "x"}
    )
    assert bad.status_code == 400
    gone = await api.http.delete(f"{api.sim.url}/_sim/items/price?key=2%7CSTD%7C1")
    assert gone.status_code == 404


async def test_query_price_rows_name_the_quantity_break_qtybreak(api) -> None:
    await api.control("POST", "seed", {"price": PRICES})
    rows = (await api.query(SET, **{"$select": "PartNo,QtyBreak,PriceSale"})).json()["value"]
    assert rows[1] == {"PartNo": "1", "QtyBreak": 10, "PriceSale": 2}
    assert all("QuantityBreak" not in r for r in rows)
    found = (await api.query(SET, **{"$filter": "QtyBreak eq 10"})).json()["value"]
    assert [(r["PartNo"], r["QtyBreak"]) for r in found] == [("1", 10)]
    # A new row shows in the next listing (the cached listing follows inserts).
    await api.control("POST", "seed", {"price": [{"PartNo": "3", "PriceListCode": "B2B"}]})
    assert len((await api.query(SET)).json()["value"]) == 4

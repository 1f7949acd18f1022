from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

N = 100_000


async def body(n: int) -> AsyncIterator[bytes]:
    """Stream a price array in ~64 KiB chunks, never building it whole."""
    buf = bytearray(b"[")
    for i in range(n):
        if i:
            buf += b","
        buf += orjson.dumps(
            {"PartNo": f"P{i:06d}", "PriceListCode": "STD", "PriceSale": i % 1000 + 0.5}
        )
        if len(buf) >= 65536:
            yield bytes(buf)
            buf.clear()
    buf += b"]"
    yield bytes(buf)


async def test_large_import_streams_through(start_sim, make_api) -> None:
    sim = await start_sim(record_history=False, lead_time_s=0.0)
    api = make_api(sim)
    sim.state.seed({"sku": [{"PartNo": f"P{i:06d}"} for i in range(N)]})  # prices need SKUs
    headers = await api.auth()
    headers["X-StormConnect-Header"] = '{"AccountId":1,"SkuPriceListFieldsThatAreSet":[3]}'
    r = await api.http.post(
        sim.connect_url + "Product/ImportSkuPriceLists", content=body(N), headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["ValidationSummary"]["NrOfItemsInTotal"] == N
    job = await api.wait_job(int(r.json()["JobId"]), within=60)
    assert (job["StatusId"], job["Totals"], job["Inserts"]) == (2, N, N)
    assert len(sim.state.items["price"]) == N
    assert sim.state.item("price", "P099999|STD|1")["PriceSale"] == 999.5

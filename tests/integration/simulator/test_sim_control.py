from __future__ import annotations

import time


async def test_seed_items_stats_reset(api) -> None:
    seeded = await api.control(
        "POST",
        "seed",
        {
            "price": [{"PartNo": "1", "PriceListCode": "STD", "PriceSale": 3}],
            "sku": [{"PartNo": "1"}, {"PartNo": "2"}],
        },
    )
    assert seeded == {"seeded": {"price": 1, "sku": 2}}
    items = await api.control("GET", "items/sku")
    assert (items["count"], [i["PartNo"] for i in items["items"]]) == (2, ["1", "2"])
    one = await api.control("GET", "items/price?key=1%7CSTD%7C1")
    assert (one["PriceSale"], one["IsActive"]) == (3, True)
    await api.run(
        "Product/ImportSkuPriceLists", [{"PartNo": "1", "PriceListCode": "STD", "PriceSale": 4}]
    )
    stats = await api.control("GET", "stats")
    assert stats["items"]["price"] == 1
    assert stats["items"]["sku"] == 2
    assert stats["jobs"] == {"total": 1, "by_status": {"Succeeded": 1}}
    assert stats["calls"]["connect:Product/ImportSkuPriceLists"] == 1
    assert stats["calls"]["identity:token"] == 1
    assert stats["calls"]["connect:Job/Get"] >= 1
    hist = await api.control("GET", "history/price?key=1%7CSTD%7C1")
    assert [h["values"]["PriceSale"] for h in hist["history"]] == [3, 4]
    assert await api.control("POST", "reset") == {"ok": True}
    stats = await api.control("GET", "stats")
    assert stats["items"]["price"] == 0
    assert stats["jobs"]["total"] == 0
    assert api.sim.state.tokens == {}
    jobs = await api.control("GET", "jobs")
    assert jobs == []


async def test_seed_rejects_bad_rows_and_kinds(api) -> None:
    r = await api.http.post(api.sim.url + "/_sim/seed", content=b'{"widgets": []}')
    assert r.status_code == 400
    r = await api.http.post(api.sim.url + "/_sim/seed", content=b'{"price": [{"PartNo": "1"}]}')
    assert r.status_code == 400
    assert "PriceListCode" in r.json()["error"]
    r = await api.http.get(api.sim.url + "/_sim/items/widgets")
    assert r.status_code == 404


async def test_faults_roundtrip_and_connect_errors(api) -> None:
    faults = await api.control(
        "PUT",
        "faults",
        {"connect": {"error_next": 1, "status": 500}, "identity": {"latency_s": 0.2}},
    )
    assert faults["connect"]["error_next"] == 1
    assert faults["identity"]["latency_s"] == 0.2
    t0 = time.monotonic()
    await api.auth()
    assert time.monotonic() - t0 >= 0.2
    r = await api.post_import("Product/ImportPriceLists", [{"PriceListCode": "X"}])
    assert r.status_code == 500
    assert r.json() == {"StatusCode": 500, "Description": "Simulated fault (injected)."}
    assert "Retry-After" not in r.headers
    assert (await api.control("GET", "faults"))["connect"]["error_next"] == 0
    r = await api.post_import("Product/ImportPriceLists", [{"PriceListCode": "X"}])
    assert r.status_code == 200
    bad = await api.http.put(api.sim.url + "/_sim/faults", content=b'{"connect": {"status": 418}}')
    assert bad.status_code == 400


async def test_error_rate_applies_to_a_share_of_calls(api) -> None:
    api.sim.state.rng.seed(7)
    await api.auth()
    api.sim.state.set_faults({"job": {"error_rate": 0.5, "status": 503}})
    headers = await api.auth()
    codes = [
        (await api.http.get(api.sim.connect_url + "Job/Ping", headers=headers)).status_code
        for _ in range(60)
    ]
    assert set(codes) == {200, 503}
    assert 15 <= codes.count(503) <= 45


async def test_events_endpoint_lists_deliveries(api) -> None:
    api.sim.state.set_subscriptions(
        {"JobCompletedEvent": {"url": "http://127.0.0.1:9/x", "enabled": False}}
    )
    await api.run("Product/ImportPriceLists", [{"PriceListCode": "X"}])
    assert await api.control("GET", "events") == []  # disabled subscription: nothing sent
    subs = await api.control("GET", "subscriptions")
    assert subs == {
        "JobCompletedEvent": {"url": "http://127.0.0.1:9/x", "headers": {}, "enabled": False}
    }

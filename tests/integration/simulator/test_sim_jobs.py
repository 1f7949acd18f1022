from __future__ import annotations

import asyncio
import itertools
import re

from norce_simulator import JobStatus

PRICE_PATH = "Product/ImportSkuPriceLists"


def prices(n: int, list_code: str = "STD", price: float = 10.0) -> list[dict]:
    return [
        {"PartNo": f"P{i}", "PriceListCode": list_code, "PriceSale": price + i} for i in range(n)
    ]


def seed_skus(api, n: int) -> None:
    """The SKUs of ``prices(n)``: Norce ignores a price whose SKU it does not have."""
    api.sim.state.seed({"sku": [{"PartNo": f"P{i}"} for i in range(n)]})


async def test_job_lifecycle_queued_initialized_validating_succeeded(start_sim, make_api) -> None:
    sim = await start_sim(workers=1, lead_time_s=0.2)
    api = make_api(sim)
    ids = [await api.submit(PRICE_PATH, prices(2, f"L{i}")) for i in range(3)]
    # One worker: the later jobs wait as Queued (6) while the first runs.
    first, *_, last = [await api.job(i) for i in ids]
    assert first["StatusId"] in (1, 6)
    assert last["StatusId"] == 6
    assert last["IsFinished"] is False
    seen: list[int] = []
    while (job := await api.job(ids[2]))["StatusId"] not in (2, 3, 4):
        if not seen or seen[-1] != job["StatusId"]:
            seen.append(job["StatusId"])
        await asyncio.sleep(0.01)
    assert seen == [6, 1, 5]  # observed over HTTP, then 2
    assert job["StatusId"] == 2
    jobs = [sim.state.jobs[i] for i in ids]
    for j in jobs:
        assert [s for s, _ in j.status_history] == [6, 1, 5, 2]
    # Serialised by the single worker, each taking about the lead time.
    for before, after in itertools.pairwise(jobs):
        assert after.status_history[1][1] >= before.status_history[-1][1]
    run = jobs[0].status_history[-1][1] - jobs[0].status_history[1][1]
    assert 0.2 <= run < 0.5


async def test_workers_run_jobs_concurrently(start_sim, make_api) -> None:
    sim = await start_sim(workers=3, lead_time_s=0.3)
    api = make_api(sim)
    ids = [await api.submit(PRICE_PATH, prices(1, f"L{i}")) for i in range(3)]
    await asyncio.gather(*(api.wait_job(i) for i in ids))
    starts = [sim.state.jobs[i].status_history[1][1] for i in ids]
    ends = [sim.state.jobs[i].status_history[-1][1] for i in ids]
    assert max(starts) < min(ends)  # all three were running at once
    assert all(s == 6 for s, _ in (sim.state.jobs[i].status_history[0] for i in ids))


async def test_job_get_and_log_shapes(api) -> None:
    seed_skus(api, 3)
    r = await api.post_import(PRICE_PATH, prices(3))
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body["JobId"], str)
    assert body["ValidationSummary"] == {
        "NrOfItemsInTotal": 3,
        "NrOfValidationFailures": 0,
        "Messages": [],
    }
    job = await api.wait_job(int(body["JobId"]))
    assert job["JobId"] == int(body["JobId"])
    assert job["StatusId"] == 2
    assert job["IsFinished"] is True
    assert (job["Totals"], job["Inserts"], job["Updates"], job["Fail"]) == (3, 3, 0, 0)
    assert re.fullmatch(r"\d\d:\d\d:\d\d", job["RunTime"])
    assert job["Start"] <= job["Stop"] <= job["LastUpdated"]
    assert job["StorageName"].endswith(".json")
    log = await api.job_log(job["JobId"])
    assert [e["Message"] for e in log] == ["Starting import.", "Import finished."]
    assert {e["SeverityId"] for e in log} == {1}
    # Same items again: updates, not inserts.
    again = await api.run(PRICE_PATH, prices(3))
    assert (again["Inserts"], again["Updates"]) == (0, 3)


async def test_unknown_job_is_404_and_ping(api) -> None:
    headers = await api.auth()
    r = await api.http.get(api.sim.connect_url + "Job/Get", params={"id": 424242}, headers=headers)
    assert r.status_code == 404
    assert r.json() == {"StatusCode": 404, "Description": "Job 424242 not found."}
    r = await api.http.get(api.sim.connect_url + "Job/Get", params={"id": "x"}, headers=headers)
    assert r.status_code == 400
    r = await api.http.get(api.sim.connect_url + "Job/Ping", headers=headers)
    assert r.status_code == 200


async def test_job_list_newest_first_with_filters(api) -> None:
    api.sim.state.set_faults({"fail_next_jobs": 1})
    failed = await api.run(PRICE_PATH, prices(1))
    ok = await api.run(PRICE_PATH, prices(1))
    headers = await api.auth()
    url = api.sim.connect_url + "Job/List"
    listed = (await api.http.get(url, headers=headers)).json()
    assert [j["JobId"] for j in listed] == [ok["JobId"], failed["JobId"]]
    only_failed = (await api.http.get(url, params={"statusId": 3}, headers=headers)).json()
    assert [j["JobId"] for j in only_failed] == [failed["JobId"]]
    top1 = (await api.http.get(url, params={"top": 1}, headers=headers)).json()
    assert len(top1) == 1


async def test_some_rows_invalid_rest_imported(api) -> None:
    api.sim.state.seed({"sku": [{"PartNo": p} for p in "ABDFG"]})
    rows = [
        {"PartNo": "A", "PriceListCode": "STD", "PriceSale": 5},
        {"PartNo": "B", "PriceListCode": "STD", "PriceSale": "cheap"},
        {"PriceListCode": "STD", "PriceSale": 1},
        {"PartNo": "D", "PriceListCode": "STD", "PriceSale": -1},
        "not an object",
        {"PartNo": "F", "PriceListCode": "STD", "PriceSale": 7, "QuantityBreak": 0},
        {"PartNo": "G", "PriceListCode": "STD", "PriceSale": 8},
    ]
    r = await api.post_import(PRICE_PATH, rows, {"AccountId": 1})
    summary = r.json()["ValidationSummary"]
    assert summary["NrOfItemsInTotal"] == 7
    assert summary["NrOfValidationFailures"] == 5
    msgs = summary["Messages"]
    assert msgs[0].startswith("Item [1] (PartNo 'B', PriceListCode 'STD'): PriceSale:")
    assert msgs[1].startswith("Item [2] (PriceListCode 'STD'): PartNo:")
    assert msgs[2].startswith("Item [3] (PartNo 'D', PriceListCode 'STD'): PriceSale:")
    assert msgs[3] == "Item [4]: item must be a JSON object"
    assert msgs[4].startswith("Item [5] (PartNo 'F', PriceListCode 'STD', QuantityBreak '0'):")
    job = await api.wait_job(int(r.json()["JobId"]))
    assert (job["StatusId"], job["Totals"], job["Fail"], job["Inserts"]) == (2, 7, 5, 2)
    assert sorted(api.sim.state.items["price"]) == ["A|STD|1", "G|STD|1"]
    log = await api.job_log(job["JobId"])
    errors = [e for e in log if e["SeverityId"] == 3]
    assert [e["ImportedRow"] for e in errors] == [1, 2, 3, 4, 5]
    assert log[0]["Message"] == "Starting import."
    assert log[-1]["Message"] == "Import finished."


async def test_required_when_listed(api) -> None:
    # PriceSale listed but missing: a row that would blank the price is refused.
    r = await api.post_import(
        PRICE_PATH,
        [{"PartNo": "A", "PriceListCode": "STD", "CostPurchase": 3}],
        {"AccountId": 1, "SkuPriceListFieldsThatAreSet": [3, 4]},
    )
    assert r.json()["ValidationSummary"]["NrOfValidationFailures"] == 1
    assert "PriceSale: a number is required" in r.json()["ValidationSummary"]["Messages"][0]


async def test_all_rows_invalid_is_validation_failed(api) -> None:
    rows = [{"PartNo": "A", "WarehouseCode": "W", "OnhandValue": "lots"}, {"PartNo": "B"}]
    job = await api.run("Product/ImportOnhands", rows)
    assert (job["StatusId"], job["Fail"], job["Inserts"], job["Updates"]) == (4, 2, 0, 0)
    assert api.sim.state.items["stock"] == {}
    log = await api.job_log(job["JobId"])
    assert log[0]["Message"] == "Starting import."
    assert log[-1]["Message"] == "Import finished."
    assert "Item [1] (PartNo 'B'): WarehouseCode: Field required" in [e["Message"] for e in log]


async def test_injected_failure_ends_failed_with_log(api) -> None:
    seed_skus(api, 2)
    await api.control("PUT", "faults", {"fail_next_jobs": 1})
    job = await api.run(PRICE_PATH, prices(2))
    assert job["StatusId"] == JobStatus.FAILED == 3
    assert job["IsFinished"] is True
    log = await api.job_log(job["JobId"])
    assert [(e["SeverityId"], e["Message"]) for e in log] == [
        (1, "Starting import."),
        (3, "Import failed: simulated failure (injected)."),
        (1, "Import finished."),
    ]
    assert api.sim.state.items["price"] == {}
    assert (await api.run(PRICE_PATH, prices(2)))["StatusId"] == 2  # only the next one failed
    assert len(api.sim.state.items["price"]) == 2


async def test_hanging_job_never_finishes_and_frees_its_worker(start_sim, make_api) -> None:
    sim = await start_sim(workers=1, lead_time_s=0.05)
    api = make_api(sim)
    sim.state.set_faults({"hang_next_jobs": 1})
    hung = await api.submit(PRICE_PATH, prices(1, "HANG"))
    after = await api.run(PRICE_PATH, prices(1, "OK"))
    assert after["StatusId"] == 2
    await asyncio.sleep(0.3)  # several lead times
    job = await api.job(hung)
    assert job["StatusId"] == 5
    assert job["IsFinished"] is False
    assert job["Stop"] is None
    assert [e["Message"] for e in await api.job_log(hung)] == ["Starting import."]
    assert "P0|HANG|1" not in sim.state.items["price"]
    stats = await api.control("GET", "stats")
    assert stats["jobs"]["by_status"] == {"Validating": 1, "Succeeded": 1}


async def test_job_endpoint_fault_and_extra_lead_time(api) -> None:
    await api.control(
        "PUT", "faults", {"job": {"error_next": 1, "status": 503, "retry_after_s": 2}}
    )
    job_id = await api.submit(PRICE_PATH, prices(1))
    r = await api.http.get(
        api.sim.connect_url + "Job/Get", params={"id": job_id}, headers=await api.auth()
    )
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "2"
    assert r.json()["StatusCode"] == 503
    assert (await api.wait_job(job_id))["StatusId"] == 2

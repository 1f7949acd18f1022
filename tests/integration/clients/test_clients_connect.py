"""ConnectClient against the simulator over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from norce.client import NorceClient
from norce.config import NorceEndpoints
from norce.connect import ImportKind, JobTimeout
from norce.connect_header import ConnectHeader
from norce.errors import NorceBadRequest, NorceServerError
from norce.jobs import JobStatus, LogSeverity
from norce_simulator import SimulatorServer

# kind -> (header, items, simulator state kind, key of the first item)
CASES: dict[ImportKind, tuple[ConnectHeader, list[dict[str, Any]], str, str]] = {
    ImportKind.PRODUCTS: (
        ConnectHeader(
            account_id=1,
            product_fields_that_are_set=["Code", "ManufacturerCode", "Cultures", "Variants"],
            sku_fields_that_are_set=["Status", "EanCode", "IsBuyable"],
        ),
        [
            {
                "Code": "P-1",
                "ManufacturerCode": "ACME",
                "Cultures": [{"CultureCode": "sv-SE", "Name": "Hammare"}],
                "Variants": [
                    {
                        "ManufacturerPartNo": "P-1-V",
                        "Skus": [{"PartNo": "1001", "Status": 1, "EanCode": "7300000000017"}],
                    }
                ],
            },
            {"Code": "P-2", "ManufacturerCode": "ACME"},
        ],
        "product",
        "P-1",
    ),
    ImportKind.SKU_PRICE_LISTS: (
        ConnectHeader(account_id=1, sku_price_list_fields_that_are_set=["PriceSale", "IsActive"]),
        [
            {"PartNo": "1001", "PriceListCode": "STD", "QuantityBreak": 1, "PriceSale": 99.5},
            {"PartNo": "1002", "PriceListCode": "STD", "QuantityBreak": 1, "PriceSale": 10},
        ],
        "price",
        "1001|STD|1",
    ),
    ImportKind.ONHANDS: (
        ConnectHeader(account_id=1, full_file=False, sku_onhand_fields_that_are_set=[3]),
        [{"PartNo": "1001", "WarehouseCode": "W1", "LocationCode": "L1", "OnhandValue": 5}],
        "stock",
        "1001|W1|L1",
    ),
    ImportKind.PRICE_LISTS: (
        ConnectHeader(account_id=1),
        [{"PriceListCode": "STD", "Name": "Standard", "CurrencyCode": "SEK"}],
        "pricelist",
        "STD",
    ),
    ImportKind.CUSTOMERS: (
        ConnectHeader(account_id=2, customer_fields_that_are_set=["Code", "EmailAddress"]),
        [{"Code": "C-1", "EmailAddress": "ada@example.com", "FirstName": "Ada"}],
        "customer",
        "C-1",
    ),
    ImportKind.SUPPLIER_PRODUCTS: (
        ConnectHeader(account_id=3, supplier_id=7),
        [{"PartNo": "S-1", "IsActive": True}],
        "supplier",
        "7|S-1",
    ),
}


def seed_skus(sim: SimulatorServer, *part_nos: str) -> None:
    sim.state.seed({"sku": [{"PartNo": p} for p in part_nos]})


@pytest.mark.parametrize("kind", list(CASES), ids=[k.name for k in CASES])
async def test_each_import_kind_round_trips(
    kind: ImportKind, norce: NorceClient, sim: SimulatorServer
) -> None:
    header, items, state_kind, key = CASES[kind]
    seed_skus(sim, "1001", "1002")  # Norce ignores prices and stock of unknown SKUs
    response = await norce.connect.import_items(kind, header, items)
    assert response.job_id is not None and response.job_id.isdigit()
    assert response.validation_summary is not None
    assert response.validation_summary.nr_of_items_in_total == len(items)
    assert response.validation_summary.nr_of_validation_failures == 0

    job = await norce.connect.wait_for_job(response.job_id_int, poll_interval=0.02, max_wait=10)
    assert job.job_id == response.job_id_int
    assert job.status is JobStatus.SUCCEEDED
    assert job.is_finished is True
    assert job.totals == len(items)
    assert job.fail == 0

    log = await norce.connect.get_job_log(job.job_id)
    messages = [entry.message for entry in log]
    assert messages[0] == "Starting import."
    assert messages[-1] == "Import finished."
    assert all(entry.severity is LogSeverity.INFORMATION for entry in log)
    assert sim.state.item(state_kind, key) is not None


async def test_convenience_methods_hit_their_endpoints(
    norce: NorceClient, sim: SimulatorServer
) -> None:
    connect = norce.connect
    calls = [
        (connect.import_products, ImportKind.PRODUCTS),
        (connect.import_sku_price_lists, ImportKind.SKU_PRICE_LISTS),
        (connect.import_onhands, ImportKind.ONHANDS),
        (connect.import_price_lists, ImportKind.PRICE_LISTS),
        (connect.import_customers, ImportKind.CUSTOMERS),
        (connect.import_supplier_products, ImportKind.SUPPLIER_PRODUCTS),
    ]
    for method, kind in calls:
        header, items, _, _ = CASES[kind]
        response = await method(header, items)
        assert response.validation_summary is not None
        assert response.validation_summary.nr_of_items_in_total == len(items)
        assert sim.state.calls[f"connect:{kind.value}"] == 1


async def test_jobs_list_and_ping(norce: NorceClient) -> None:
    header, items, _, _ = CASES[ImportKind.ONHANDS]
    first = await norce.connect.import_onhands(header, items)
    second = await norce.connect.import_onhands(header, items)
    await norce.connect.wait_for_job(second.job_id_int, poll_interval=0.02, max_wait=10)
    jobs = await norce.connect.list_jobs()
    assert [job.job_id for job in jobs] == [second.job_id_int, first.job_id_int]
    done = await norce.connect.list_jobs(status=JobStatus.SUCCEEDED, is_finished=True, top=1)
    assert [job.job_id for job in done] == [second.job_id_int]
    assert await norce.connect.ping() is True


async def test_injected_job_failure_ends_failed_with_log(
    norce: NorceClient, sim: SimulatorServer
) -> None:
    sim.state.set_faults({"fail_next_jobs": 1})
    header, items, _, key = CASES[ImportKind.ONHANDS]
    response = await norce.connect.import_onhands(header, items)
    job = await norce.connect.wait_for_job(response.job_id_int, poll_interval=0.02, max_wait=10)
    assert job.status is JobStatus.FAILED
    assert job.is_final
    log = await norce.connect.get_job_log(job.job_id)
    assert log[0].message == "Starting import."
    assert log[-1].message == "Import finished."
    errors = [entry for entry in log if entry.severity is LogSeverity.ERROR]
    assert len(errors) == 1
    assert "failed" in errors[0].message.lower()
    assert sim.state.item("stock", key) is None  # a failed job writes nothing


async def test_failing_rows_are_reported_and_the_rest_imported(
    norce: NorceClient, sim: SimulatorServer
) -> None:
    seed_skus(sim, "1001", "1003")
    header = ConnectHeader(account_id=1, sku_onhand_fields_that_are_set=["OnhandValue"])
    rows = [
        {"PartNo": "1001", "WarehouseCode": "W1", "LocationCode": "", "OnhandValue": 1},
        {"PartNo": "", "WarehouseCode": "W1", "LocationCode": "", "OnhandValue": 2},
        {"PartNo": "1003", "WarehouseCode": "W1", "LocationCode": "", "OnhandValue": 3},
    ]
    response = await norce.connect.import_onhands(header, rows)
    summary = response.validation_summary
    assert summary is not None
    assert (summary.nr_of_items_in_total, summary.nr_of_validation_failures) == (3, 1)
    assert len(summary.messages) == 1
    job = await norce.connect.wait_for_job(response.job_id_int, poll_interval=0.02, max_wait=10)
    assert job.status is JobStatus.SUCCEEDED
    assert job.fail == 1
    log = await norce.connect.get_job_log(job.job_id)
    errors = [entry for entry in log if entry.severity is LogSeverity.ERROR]
    assert len(errors) == 1
    assert errors[0].imported_row == 1
    assert sim.state.item("stock", "1003|W1|") is not None
    assert sim.state.item("stock", "1001|W1|") is not None


async def test_unlisted_fields_stay_untouched(norce: NorceClient, sim: SimulatorServer) -> None:
    full = ConnectHeader(
        account_id=1, sku_price_list_fields_that_are_set=["PriceSale", "CostPurchase"]
    )
    seed_skus(sim, "1001")
    row = {"PartNo": "1001", "PriceListCode": "STD", "QuantityBreak": 1}
    first = await norce.connect.import_sku_price_lists(
        full, [{**row, "PriceSale": 100, "CostPurchase": 40}]
    )
    await norce.connect.wait_for_job(first.job_id_int, poll_interval=0.02, max_wait=10)

    only_price = ConnectHeader(account_id=1, sku_price_list_fields_that_are_set=["PriceSale"])
    second = await norce.connect.import_sku_price_lists(
        only_price, [{**row, "PriceSale": 90, "CostPurchase": 1}]
    )
    await norce.connect.wait_for_job(second.job_id_int, poll_interval=0.02, max_wait=10)
    stored = sim.state.item("price", "1001|STD|1")
    assert stored is not None
    assert stored["PriceSale"] == 90
    assert stored["CostPurchase"] == 40


async def test_bad_header_is_a_bad_request_with_description(norce: NorceClient) -> None:
    header = ConnectHeader(account_id=1, serialization_type=1)
    with pytest.raises(NorceBadRequest) as info:
        await norce.connect.import_onhands(header, [])
    assert info.value.status_code == 400
    assert "SerializationType" in (info.value.description or "")


async def test_large_async_stream_is_imported_whole(
    norce: NorceClient, sim: SimulatorServer
) -> None:
    n = 20_000
    seed_skus(sim, *(f"{i:06d}" for i in range(n)))

    async def rows() -> AsyncIterator[dict[str, Any]]:
        for i in range(n):
            yield {"PartNo": f"{i:06d}", "WarehouseCode": "W1", "OnhandValue": i}

    header = ConnectHeader(account_id=1, sku_onhand_fields_that_are_set=["OnhandValue"])
    response = await norce.connect.import_onhands(header, rows())
    assert response.validation_summary is not None
    assert response.validation_summary.nr_of_items_in_total == n
    job = await norce.connect.wait_for_job(response.job_id_int, poll_interval=0.05, max_wait=30)
    assert (job.status, job.totals, job.inserts) == (JobStatus.SUCCEEDED, n, n)
    assert len(sim.state.list_items("stock")) == n
    last = sim.state.item("stock", f"{n - 1:06d}|W1|")
    assert last is not None and last["OnhandValue"] == n - 1


async def test_factory_source_is_restreamed_after_a_5xx(
    norce: NorceClient, sim: SimulatorServer
) -> None:
    sim.state.set_faults({"connect": {"error_next": 1, "status": 503}})
    produced = 0

    async def rows() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        for i in range(3):
            produced += 1
            yield {"PartNo": f"F{i}", "WarehouseCode": "W1", "OnhandValue": i}

    header = ConnectHeader(account_id=1, sku_onhand_fields_that_are_set=["OnhandValue"])
    response = await norce.connect.import_onhands(header, rows)  # the function: a factory
    assert response.validation_summary is not None
    assert response.validation_summary.nr_of_items_in_total == 3
    assert sim.state.calls["connect:Product/ImportOnhands"] == 2
    assert produced == 6  # both attempts streamed the rows afresh


async def test_one_shot_source_is_not_retried(norce: NorceClient, sim: SimulatorServer) -> None:
    sim.state.set_faults({"connect": {"error_next": 1, "status": 503}})

    async def rows() -> AsyncIterator[dict[str, Any]]:
        yield {"PartNo": "X", "WarehouseCode": "W1", "OnhandValue": 1}

    header = ConnectHeader(account_id=1, sku_onhand_fields_that_are_set=["OnhandValue"])
    with pytest.raises(NorceServerError) as info:
        await norce.connect.import_onhands(header, rows())
    assert info.value.status_code == 503
    assert sim.state.calls["connect:Product/ImportOnhands"] == 1


async def test_hanging_job_times_out_the_wait(norce: NorceClient, sim: SimulatorServer) -> None:
    sim.state.set_faults({"hang_next_jobs": 1})
    header, items, _, _ = CASES[ImportKind.ONHANDS]
    response = await norce.connect.import_onhands(header, items)
    with pytest.raises(JobTimeout) as info:
        await norce.connect.wait_for_job(response.job_id_int, poll_interval=0.05, max_wait=0.5)
    assert info.value.job is not None
    assert info.value.job.job_id == response.job_id_int
    assert info.value.job.status is JobStatus.VALIDATING
    assert info.value.job.is_finished is False


def test_endpoints_from_base_url_match_the_simulator(sim: SimulatorServer) -> None:
    endpoints = NorceEndpoints(base_url=sim.url)
    assert endpoints.identity_url == sim.identity_url
    assert endpoints.connect_url == sim.connect_url
    assert endpoints.query_url == sim.query_url


async def test_job_service_under_the_api_prefix(sim: SimulatorServer, demo, fast_retry) -> None:  # type: ignore[no-untyped-def]
    endpoints = NorceEndpoints(base_url=sim.url, job_path_prefix="api/")
    async with NorceClient(demo, endpoints, retry=fast_retry) as norce:
        header, items, _, _ = CASES[ImportKind.ONHANDS]
        response = await norce.connect.import_onhands(header, items)
        job = await norce.connect.wait_for_job(response.job_id_int, poll_interval=0.02, max_wait=10)
        assert job.is_finished
        assert await norce.connect.ping() is True
        assert await norce.connect.get_job_log(response.job_id_int)  # under api/Job/GetLog

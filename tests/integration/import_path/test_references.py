"""References: a price or stock row goes to Norce only once its SKU (and price list)
exists there, because Norce ignores such rows silently and still reports success."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from norce_simulator import SimulatorServer
from tests.support.broker import ROOT
from tests.support.debezium import (
    PRICE_KEY,
    STOCK_KEY,
    envelope,
    item_row,
    key_bytes,
    price_row,
    stock_row,
)
from tests.support.kafka import produce, read_all
from tests.support.stack import (
    delta_status,
    ledger,
    start_worker,
    trigger_delta,
    wait_applied,
    wait_until,
    worker_env,
    write_config,
)
from tests.support.worker import WorkerProcess

PART = "NEW-00001"


async def reconcile_via_http(worker: WorkerProcess) -> dict[str, Any]:
    """``POST /reconcile/erp/price`` and its result."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"{worker.url}/reconcile/erp/price")
        assert response.status_code == 202, response.text
        request_id = response.json()["request_id"]

        async def result() -> dict[str, Any] | None:
            body = (await client.get(f"{worker.url}/reconcile/")).json()
            found = [r for r in body["results"] if r["request_id"] == request_id]
            return found[0] if found else None

        return await wait_until(result, what="reconcile result")  # type: ignore[no-any-return]


@asynccontextmanager
async def refs_worker(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer, **env: str
) -> AsyncIterator[tuple[WorkerProcess, dict[str, str], dict[str, str]]]:
    """A worker on this test's ERP price, stock and item (product) topics; deltas only
    when the test triggers them."""
    config, topics = write_config(tmp_path, unique, kinds=("price", "stock", "product"))
    env = {"NORCE_SYNC_OPS_BACKLOG_INTERVAL_S": "0.5", **env}
    env_all = worker_env(kafka_servers, unique, sim.url, config, tmp_path, **env)
    worker = await start_worker("norce_sync", env_all, tmp_path / "worker.log")
    try:
        yield worker, env_all, topics
    finally:
        worker.stop()


async def publish_new_sku(kafka_servers: str, topics: dict[str, str], part_no: str) -> None:
    item = item_row(part_no, f"P-{part_no}", weight=1.0)
    price = price_row(part_no, 249.0)
    stock = stock_row(part_no, qty=7)
    await produce(kafka_servers, topics["product"], [(key_bytes(item, ["part_no"]),
                  envelope("items", "c", item))])  # fmt: skip
    await produce(kafka_servers, topics["price"], [(key_bytes(price, PRICE_KEY),
                  envelope("prices", "c", price))])  # fmt: skip
    await produce(kafka_servers, topics["stock"], [(key_bytes(stock, STOCK_KEY),
                  envelope("stock", "c", stock))])  # fmt: skip


async def waiting_in_view(worker: WorkerProcess, pair: str) -> dict[str, Any]:
    """The pair's rows waiting for references as the group's /pending/ view shows them
    (it follows the ops backlog topic, so it shows them a report interval later)."""

    async def shown() -> dict[str, Any] | None:
        async with httpx.AsyncClient() as http:
            body = (await http.get(f"{worker.url}/pending/")).json()
        return body["waiting_for_references"].get(pair)  # type: ignore[no-any-return]

    return await wait_until(shown, timeout=30, what=f"{pair} waiting in /pending/")  # type: ignore[no-any-return]


def assert_nothing_ignored(sim: SimulatorServer) -> None:
    """Every price and stock row the service sent was written: none reached Norce before
    its SKU existed (Norce, and the simulator, would have ignored it silently)."""
    for job in sim.state.jobs.values():
        if job.kind in ("price", "stock"):
            assert job.inserts + job.updates == job.totals - job.fail, (
                f"job {job.id} ({job.kind}): {job.totals} rows, "
                f"{job.inserts + job.updates} written: some were ignored"
            )


async def test_price_and_stock_wait_for_the_product_job_that_creates_their_sku(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    # A long re-check interval: only the product job's success may release the rows.
    async with refs_worker(
        kafka_servers, unique, tmp_path, sim, NORCE_SYNC_REFERENCE_RECHECK_S="600"
    ) as (worker, _, topics):
        await publish_new_sku(kafka_servers, topics, PART)  # the same second
        for kind in ("product", "price", "stock"):
            await wait_applied([worker], "erp", kind, 1)
        # The price and stock deltas run first: their SKU is not in Norce yet.
        for kind in ("price", "stock"):
            assert (await trigger_delta(worker, "erp", kind))["batches"] == []
            status = await delta_status(worker, "erp", kind)
            assert (status["pending"], status["waiting_for_references"]) == (1, 1)
        assert sim.state.items["price"] == {} and sim.state.items["stock"] == {}
        waiting = await waiting_in_view(worker, "erp|price")
        assert waiting["examples"] == [
            {"key": f"erp|price|{PART}|STD|1", "reason": f"SKU {PART} not in Norce"}
        ]
        # Now the product delta: once its job succeeded, price and stock go out by
        # themselves (no trigger, no schedule).
        assert len((await trigger_delta(worker, "erp", "product"))["batches"]) == 1

        def in_norce() -> bool:
            return (
                sim.state.item("price", (PART, "STD", 1)) is not None
                and sim.state.item("stock", (PART, "MAIN", "A1")) is not None
            )

        await wait_until(in_norce, timeout=60, what="price and stock in Norce")
        sku_insert = sim.state.history("sku", PART)[0]
        assert sku_insert["op"] == "insert"
        for kind, key in (("price", (PART, "STD", 1)), ("stock", (PART, "MAIN", "A1"))):
            first = sim.state.history(kind, key)[0]
            assert first["seq"] > sku_insert["seq"]
        assert sim.state.item("price", (PART, "STD", 1))["PriceSale"] == 249.0
        assert sim.state.item("stock", (PART, "MAIN", "A1"))["OnhandValue"] == 7
        assert_nothing_ignored(sim)

        async def drained() -> bool:
            status = await delta_status(worker, "erp", "price")
            return status["pending"] == 0 and status["waiting_for_references"] == 0

        await wait_until(drained, timeout=30, what="price pending drained")


async def test_price_whose_sku_never_arrives_waits_until_a_direct_norce_change(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with refs_worker(
        kafka_servers, unique, tmp_path, sim, NORCE_SYNC_REFERENCE_RECHECK_S="1"
    ) as (worker, env, topics):
        price = price_row(PART, 99.0)
        await produce(
            kafka_servers,
            topics["price"],
            [(key_bytes(price, PRICE_KEY), envelope("prices", "c", price))],
        )
        await wait_applied([worker], "erp", "price", 1)
        assert (await trigger_delta(worker, "erp", "price"))["batches"] == []
        waiting = await waiting_in_view(worker, "erp|price")
        async with httpx.AsyncClient() as http:
            dashboard = (await http.get(f"{worker.url}/")).text
            metrics_text = (await http.get(f"{worker.url}/metrics")).text
        assert waiting["count"] == 1
        assert waiting["examples"][0]["reason"] == f"SKU {PART} not in Norce"
        assert 'id="waiting"' in dashboard  # the dashboard renders /pending/'s waiting rows
        assert 'norce_sync_waiting_references{kind="price",source="erp"} 1.0' in metrics_text
        cli = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "norce_sync", "waiting", "--worker", worker.url),
            cwd=ROOT,
            env=worker.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(cli.communicate(), timeout=120)
        assert cli.returncode == 0, err.decode()[-2000:]
        assert f"SKU {PART} not in Norce" in out.decode()
        assert "1 row(s) waiting for references" in out.decode()
        # Still waiting after several re-checks, and nothing was dead-lettered.
        await wait_until(
            lambda: sim.state.calls["query:Products/ProductSkus"] >= 3,
            timeout=30,
            what="re-checks",
        )
        assert (await delta_status(worker, "erp", "price"))["waiting_for_references"] == 1
        assert sim.state.items["price"] == {}
        assert await read_all(kafka_servers, env["NORCE_SYNC_DLQ_TOPIC"]) == []
        # Reconcile names it apart: held back for a reference, not merely missing.
        result = await reconcile_via_http(worker)
        assert (result["waiting_reference"], result["missing"], result["pending"]) == (1, 0, 0)
        assert result["examples"]["waiting_reference"] == [
            {"key": f"{PART}|STD|1", "reason": f"SKU {PART} not in Norce"}
        ]
        # A full import sends only the rows whose references exist, and says so.
        known = price_row("SKU-00001", 11.0)  # a SKU of the tenant's catalogue
        await produce(
            kafka_servers,
            topics["price"],
            [(key_bytes(known, PRICE_KEY), envelope("prices", "c", known))],
        )
        await wait_applied([worker], "erp", "price", 2)
        cli = await asyncio.create_subprocess_exec(
            *(
                sys.executable,
                "-m",
                "norce_sync",
                "full-import",
                "--source",
                "erp",
                "--kind",
                "price",
            ),
            cwd=ROOT,
            env=worker.env,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(cli.communicate(), timeout=120)
        assert cli.returncode == 0, err.decode()[-2000:]
        assert "1 row(s) held back: a reference not in Norce" in err.decode()
        full = [r for r in (await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])).values()]
        assert [(r.mode, r.item_count, r.held_back) for r in full] == [("full", 1, 1)]
        assert sorted(sim.state.items["price"]) == ["SKU-00001|STD|1"]
        # The SKU is created in Norce directly (not by this service): the re-check finds it.
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{sim.url}/_sim/seed", json={"sku": [{"PartNo": PART}]})
            assert answer.status_code == 200, answer.text
        await wait_until(
            lambda: sim.state.item("price", (PART, "STD", 1)) is not None,
            timeout=60,
            what="the price sent after the SKU appeared",
        )
        assert_nothing_ignored(sim)

        async def released() -> Any:
            return (await delta_status(worker, "erp", "price"))["waiting_for_references"] == 0

        await wait_until(released, timeout=30, what="no row waiting")

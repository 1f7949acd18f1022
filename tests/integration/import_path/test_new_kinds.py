"""The ``pricelist`` and ``company`` kinds against the simulator: a price waits for the
price list a ``pricelist`` input creates; companies go out by delta and by full import,
and ``CompanyChangedNotification`` is exported to ``out.<target>.company``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml

from norce_simulator import SimulatorServer
from tests.support.broker import ROOT
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce, read_all
from tests.support.stack import (
    NEVER,
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

PRICE_LIST_INPUT: dict[str, Any] = {
    "source": "erp",
    "kind": "pricelist",
    "format": "debezium",
    "key_columns": ["code"],
    "mapping": {
        "PriceListCode": {"from": "code", "convert": ["strip", "upper"]},
        "Name": "name",
        "CurrencyCode": "currency_code",
    },
    "owned_fields": {"PriceListFieldsThatAreSet": ["Name", "CurrencyCode"]},
}
COMPANY_INPUT: dict[str, Any] = {
    "source": "erp",
    "kind": "company",
    "format": "debezium",
    "key_columns": ["code"],
    "mapping": {
        "Code": "code",
        "Name": "name",
        "OrganizationNo": "org_no",
        "EmailAddress": "email",
    },
    "owned_fields": {"CompanyFieldsThatAreSet": ["Name", "OrganizationNo", "EmailAddress"]},
}
COMPANY_TARGET = {"mapping": {"id": "Id", "code": "CompanyCode", "name": "Name"}}


@asynccontextmanager
async def worker_with(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer, **inputs: dict
) -> AsyncIterator[tuple[WorkerProcess, dict[str, str], dict[str, str]]]:
    """A worker on this test's ERP price topic plus ``inputs`` (name -> binding)."""
    config, topics = write_config(tmp_path, unique, kinds=("price",))
    data = yaml.safe_load(config.read_text())
    for name, binding in inputs.items():
        topic = f"erp.public.{name}.{unique}"
        data["inputs"].append(
            {**binding, "topic": topic, "delta_schedule": NEVER, "full_schedule": NEVER}
        )
        topics[binding["kind"]] = topic
    data["targets"] = {"crm": {"company": COMPANY_TARGET}}
    config.write_text(yaml.safe_dump(data))
    env = worker_env(
        kafka_servers,
        unique,
        sim.url,
        config,
        tmp_path,
        NORCE_SYNC_EXPORT_TOPIC_PREFIX=f"{unique}.",
    )
    worker = await start_worker("norce_sync", env, tmp_path / "worker.log")
    try:
        yield worker, env, topics
    finally:
        worker.stop()


async def test_price_waits_for_the_price_list_a_pricelist_input_creates(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with worker_with(kafka_servers, unique, tmp_path, sim, price_lists=PRICE_LIST_INPUT) as (
        worker,
        _,
        topics,
    ):
        head = {"code": "eur-b2b ", "name": "B2B euro", "currency_code": "EUR"}
        price = price_row("SKU-00001", 42.0, price_list="EUR-B2B")  # the SKU exists
        await produce(
            kafka_servers,
            topics["pricelist"],
            [(key_bytes(head, ["code"]), envelope("price_lists", "c", head))],
        )
        await produce(
            kafka_servers,
            topics["price"],
            [(key_bytes(price, PRICE_KEY), envelope("prices", "c", price))],
        )
        await wait_applied([worker], "erp", "pricelist", 1)
        await wait_applied([worker], "erp", "price", 1)
        assert (await trigger_delta(worker, "erp", "price"))["batches"] == []  # runs first
        status = await delta_status(worker, "erp", "price")
        assert status["waiting_for_references"] == 1
        assert len((await trigger_delta(worker, "erp", "pricelist"))["batches"]) == 1
        await wait_until(
            lambda: sim.state.item("price", ("SKU-00001", "EUR-B2B", 1)) is not None,
            timeout=60,
            what="the price sent once its price list exists",
        )
        pricelist = sim.state.item("pricelist", "EUR-B2B")
        assert (pricelist["Name"], pricelist["CurrencyCode"]) == ("B2B euro", "EUR")
        head_job = next(j for j in sim.state.jobs.values() if j.kind == "pricelist")
        assert "FullFile" not in head_job.header.model_dump(exclude_unset=True)
        assert (
            sim.state.history("pricelist", "EUR-B2B")[0]["seq"]
            < (sim.state.history("price", ("SKU-00001", "EUR-B2B", 1))[0]["seq"])
        )
        for job in sim.state.jobs.values():  # nothing Norce ignored
            assert job.inserts + job.updates == job.totals - job.fail


async def test_companies_by_delta_and_full_import_and_their_export(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with worker_with(kafka_servers, unique, tmp_path, sim, companies=COMPANY_INPUT) as (
        worker,
        env,
        topics,
    ):
        sim.state.set_subscriptions(
            {
                "CompanyChangedNotification": {
                    "url": f"{worker.url}/norce/events/CompanyChangedNotification",
                    "headers": {"x-norce-webhook-token": env["NORCE_SYNC_WEBHOOK_TOKEN"]},
                }
            }
        )
        rows = [
            {"code": f"C{n}", "name": f"Company {n}", "org_no": f"55600-{n:04d}",
             "email": f"c{n}@example.se"}
            for n in range(3)
        ]  # fmt: skip
        await produce(
            kafka_servers,
            topics["company"],
            [(key_bytes(r, ["code"]), envelope("companies", "c", r)) for r in rows],
        )
        await wait_applied([worker], "erp", "company", 3)
        assert len((await trigger_delta(worker, "erp", "company"))["batches"]) == 1
        await wait_until(
            lambda: len(sim.state.items["company"]) == 3, timeout=60, what="3 companies"
        )
        c1 = sim.state.item("company", "C1")
        assert (c1["Name"], c1["OrganizationNo"], c1["EmailAddress"]) == (
            "Company 1",
            "55600-0001",
            "c1@example.se",
        )
        job = next(j for j in sim.state.jobs.values() if j.kind == "company")
        assert job.endpoint == "Customer/ImportCompanies"
        assert job.header.CompanyFieldsThatAreSet == [4, 3, 5]
        # Export: each company change in Norce reached out.crm.company, keyed by its Id.
        topic = f"{unique}.out.crm.company"

        async def exported() -> dict[bytes, Any]:
            records = await read_all(kafka_servers, topic)
            return {r.key: orjson.loads(r.value) for r in records if r.value is not None}

        async def three_exported() -> bool:
            return len(await exported()) == 3

        await wait_until(three_exported, timeout=60, what="3 company records exported")
        docs = await exported()
        assert docs[str(c1["Id"]).encode()] == {"id": c1["Id"], "code": "C1", "name": "Company 1"}
        # A full import resends every company (no FullFile: Norce has none for companies).
        sim.state.edit("company", "C2", {"Name": "Edited in Norce"})
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "norce_sync", "full-import", "--source", "erp", "--kind", "company"),
            cwd=ROOT,
            env=worker.env,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(cli.communicate(), timeout=120)
        assert cli.returncode == 0, stderr.decode()[-2000:]
        assert sim.state.item("company", "C2")["Name"] == "Company 2"
        full = [j for j in sim.state.jobs.values() if j.kind == "company"][-1]
        assert "FullFile" not in full.header.model_dump(exclude_unset=True)
        records = (await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])).values()
        assert sorted((r.mode, r.status) for r in records if r.kind == "company") == [
            ("delta", "succeeded"),
            ("full", "succeeded"),
        ]

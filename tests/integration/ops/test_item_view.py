"""``GET /items/{source}/{kind}/{key}`` follows one item from its source change to Norce:
a key at rest matching Norce, a key drifted in Norce, a key with a dead letter, a key
whose job failed (its job-log line shown), a key pending behind an open job; and a worker
that does not hold the key answers with its owner's answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from norce_simulator import FaultConfig, SimulatorConfig, SimulatorServer
from tests.support.cli import norce_sync
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce
from tests.support.stack import (
    delta_status,
    start_worker,
    stop_workers,
    trigger_delta,
    wait_until,
    worker_env,
    write_config,
)
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

TOKEN = "item-view-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARTS = [f"ITEM-{n}" for n in range(1, 9)] + ["ITEM/9 %2F?#"]  # and a hostile one


async def item(worker: WorkerProcess, part_no: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        key = quote(f"{part_no}|STD|1", safe="|")
        return await client.get(f"{worker.url}/items/erp/price/{key}", headers=AUTH, params=params)


async def traced(worker: WorkerProcess, part_no: str) -> dict[str, Any]:
    answer = await item(worker, part_no)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def send_prices(servers: str, topic: str, prices: dict[str, float]) -> None:
    rows = [price_row(part, price) for part, price in prices.items()]
    await produce(
        servers, topic, [(key_bytes(r, PRICE_KEY), envelope("prices", "u", r)) for r in rows]
    )


async def delivered(worker: WorkerProcess, sim: SimulatorServer, prices: dict[str, float]) -> bool:
    """Deltas run until Norce holds ``prices`` and nothing is pending or open."""
    status = await delta_status(worker, "erp", "price", headers=AUTH)
    if status["pending"] and not status["open_jobs"]:
        await trigger_delta(worker, "erp", "price", headers=AUTH)
    held = {r["PartNo"]: r["PriceSale"] for r in sim.state.list_items("price")}
    done = all(held.get(part) == price for part, price in prices.items())
    return done and not status["pending"] and not status["open_jobs"]


async def test_one_item_from_source_to_norce(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    sim_cfg = SimulatorConfig(port=0, lead_time_s=0.2, token_rate_limit=False)
    async with SimulatorServer(sim_cfg) as sim:
        sim.state.seed({"sku": [{"PartNo": p} for p in PARTS]})
        config, topics = write_config(tmp_path, unique)
        env = worker_env(
            kafka_servers, unique, sim.url, config, tmp_path,
            NORCE_SYNC_OPS_TOKEN=TOKEN, NORCE_SYNC_OPS_BACKLOG_INTERVAL_S="0.5",
        )  # fmt: skip
        topic = topics["price"]
        a = await start_worker("norce_sync", env, tmp_path / "a.log")
        b: WorkerProcess | None = None
        try:
            first = {p: 10.0 + n for n, p in enumerate(PARTS)}
            await send_prices(kafka_servers, topic, first)
            await wait_until(lambda: delivered(a, sim, first), timeout=120, what="prices delivered")

            # -- at rest, matching Norce ----------------------------------------------
            rest = await traced(a, "ITEM-1")
            assert rest["state_key"] == "erp|price|ITEM-1|STD|1"
            assert rest["state"]["row"]["PriceSale"] == 10.0
            assert rest["state"]["row_sent"] is True
            assert "lsn" in rest["state"]["version"]  # the position spelled out
            assert rest["pending"] is None
            assert rest["jobs"][0]["status"] == "succeeded"
            assert rest["jobs"][0]["version_sent"]["lsn"] == rest["state"]["version"]["lsn"]
            assert rest["norce"]["found"] is True and rest["norce"]["matching"] is True
            assert rest["dead_letters"] == []
            hostile = await traced(a, "ITEM/9 %2F?#")
            assert hostile["state"]["row"]["PartNo"] == "ITEM/9 %2F?#"
            cli = await asyncio.to_thread(
                norce_sync, "item", "--source", "erp", "--kind", "price", "--worker", a.url,
                "ITEM-1|STD|1", env=env,
            )  # fmt: skip
            assert cli.returncode == 0, cli.stderr
            assert "item           erp|price|ITEM-1|STD|1" in cli.stdout
            assert "in Norce       matching" in cli.stdout

            # -- drifted in Norce -------------------------------------------------------
            async with httpx.AsyncClient(timeout=30) as client:
                patched = await client.patch(
                    f"{sim.url}/_sim/items/price", params={"key": "ITEM-2|STD|1"},
                    json={"PriceSale": 99.0},
                )  # fmt: skip
                patched.raise_for_status()
            drift = (await traced(a, "ITEM-2"))["norce"]
            assert drift["matching"] is False
            assert drift["different"]["PriceSale"] == {"expected": 11.0, "norce": 99.0}

            # -- a dead letter of the key ----------------------------------------------
            bad = price_row("ITEM-3", 1.0)
            bad["quantity_break"] = "one"
            bad_key = key_bytes({**bad, "quantity_break": 1}, PRICE_KEY)
            await produce(kafka_servers, topic, [(bad_key, envelope("prices", "u", bad))])

            async def dead_letter() -> list[dict[str, Any]]:
                return (await traced(a, "ITEM-3"))["dead_letters"]  # type: ignore[no-any-return]

            letters = await wait_until(dead_letter, timeout=60, what="ITEM-3's dead letter")
            assert letters[0]["stage"] == "map" and "QuantityBreak" in letters[0]["reason"]
            assert letters[0]["topic"] == topic

            # -- a job that failed, with its log line ------------------------------------
            sim.state.set_faults(FaultConfig(fail_next_jobs=1))
            await send_prices(kafka_servers, topic, {"ITEM-4": 44.0})

            async def failed_job() -> dict[str, Any] | None:
                status = await delta_status(a, "erp", "price", headers=AUTH)
                if status["pending"] and not status["open_jobs"]:
                    await trigger_delta(a, "erp", "price", headers=AUTH)
                jobs = (await traced(a, "ITEM-4"))["jobs"]
                # The tracker records the job log's errors right after it sees the failure.
                return next((j for j in jobs if j["status"] == "failed" and j.get("log")), None)

            failed = await wait_until(failed_job, timeout=150, what="ITEM-4's failed job")
            assert any("simulated failure" in line for line in failed["log"])

            # -- pending behind an open job ----------------------------------------------
            again = {"ITEM-4": 44.0}
            await wait_until(lambda: delivered(a, sim, again), timeout=120, what="ITEM-4 delivered")
            sim.state.set_faults(FaultConfig(hang_next_jobs=1))
            await send_prices(kafka_servers, topic, {"ITEM-5": 55.0})

            async def hanging() -> bool:
                status = await delta_status(a, "erp", "price", headers=AUTH)
                if status["open_jobs"]:
                    return True
                if status["pending"]:
                    await trigger_delta(a, "erp", "price", headers=AUTH)
                return False

            await wait_until(hanging, timeout=60, what="a hanging job")
            await send_prices(kafka_servers, topic, {"ITEM-5": 56.0})

            async def behind_job() -> dict[str, Any] | None:
                trace = await traced(a, "ITEM-5")
                pending = trace["pending"]
                return trace if pending and trace["state"]["row"]["PriceSale"] == 56.0 else None

            waiting = await wait_until(behind_job, timeout=60, what="ITEM-5 pending")
            assert "waiting for job" in waiting["pending"]["reason"]
            assert waiting["jobs"][0]["status"] not in ("succeeded", "failed")

            # -- pending for a SKU Norce does not have -------------------------------------
            await send_prices(kafka_servers, topic, {"GHOST-1": 1.0})

            async def ghost() -> dict[str, Any] | None:
                answer = await item(a, "GHOST-1")
                return answer.json() if answer.status_code == 200 else None

            held = await wait_until(ghost, timeout=60, what="GHOST-1 in the state")
            assert "waiting for references: SKU GHOST-1 not in Norce" in held["pending"]["reason"]

            # -- any worker answers ------------------------------------------------------
            b_env = {**env, "NORCE_SYNC_DATA_DIR": str(tmp_path / "data-b")}
            b = await start_worker("norce_sync", b_env, tmp_path / "b.log")

            last: list[str] = []

            async def both_answer() -> dict[str, set[str]] | None:
                answered_by: dict[str, set[str]] = {}
                for part in [*PARTS, "GHOST-1"]:
                    owners = set()
                    for worker in (a, b):
                        answer = await item(worker, part)
                        if answer.status_code != 200:
                            last[:] = [f"{worker.url} {part}: {answer.status_code} {answer.text}"]
                            return None
                        assert answer.json()["state_key"] == f"erp|price|{part}|STD|1"
                        owners.add(answer.headers["X-Norce-Sync-Answered-By"])
                    if len(owners) != 1:
                        return None  # mid-rebalance: asked twice, answered by two owners
                    answered_by[part] = owners
                return answered_by

            try:
                owners = await wait_until(both_answer, timeout=120, what="both workers answer")
            except TimeoutError:
                raise AssertionError(
                    f"not every item answered by both workers: {last}\n{a.tail()}\n{b.tail()}"
                ) from None
            assert {o for os in owners.values() for o in os} == {a.url, b.url}  # keys on both

            missing = await item(b, "NO-SUCH-SKU")
            assert missing.status_code == 404
            assert "no worker holds erp|price|NO-SUCH-SKU|STD|1" in missing.json()["error"]
        finally:
            await stop_workers(a, *([b] if b is not None else []))

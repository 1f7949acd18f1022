"""What happens after Norce answers: failed jobs re-queue from current state, rows Norce
rejects go to the dead-letter topic, and a successful full import supersedes failed jobs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from norce_simulator import SimulatorServer
from streams.records import DeadLetter
from tests.support.broker import ROOT
from tests.support.debezium import price_change
from tests.support.kafka import produce, wait_for_records
from tests.support.stack import (
    deliver,
    delta_status,
    import_worker,
    ledger,
    norce_prices,
    trigger_delta,
    wait_applied,
    wait_until,
)


async def test_failed_job_requeues_current_state_and_rejected_rows_are_dead_lettered(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (
        worker,
        env,
        topics,
    ):
        sim.state.set_faults({"fail_next_jobs": 1, "job_extra_lead_time_s": 1.0})
        await produce(kafka_servers, topics["price"], [price_change(n, 1) for n in range(50)])
        await wait_applied([worker], "erp", "price", 50)
        assert len((await trigger_delta(worker, "erp", "price"))["batches"]) == 1
        # While the job runs (and fails), half the keys change again.
        await produce(kafka_servers, topics["price"], [price_change(n, 2) for n in range(25)])
        expected = {f"SKU-{n:05d}": n * 100 + (2 if n < 25 else 1) for n in range(50)}
        await deliver(worker, sim, expected)

        records = list((await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])).values())
        failed = [r for r in records if r.status == "failed"]
        assert len(failed) == 1 and failed[0].settled and not failed[0].superseded
        assert failed[0].errors, "Norce's log errors are recorded on the job"
        # Every key went out again: the changed ones and the re-queued unchanged ones. (A
        # changed key can go out twice: once for its change, once re-queued with the same
        # current state; harmless, and never an older value.)
        assert sum(r.item_count for r in records if r.status != "failed") >= 50
        for n in range(50):
            written = [
                h["values"]["PriceSale"] for h in sim.state.history("price", f"SKU-{n:05d}|STD|1")
            ]
            assert written == sorted(written), f"SKU-{n:05d} went back: {written}"

        # A row Norce refuses (PriceSale missing) is dead-lettered; the others go in.
        await produce(
            kafka_servers,
            topics["price"],
            [price_change(60, 3, no_price=True), price_change(61, 3)],
        )
        await wait_applied([worker], "erp", "price", 77)
        await deliver(worker, sim, {**expected, "SKU-00061": 6103})
        letters = [
            DeadLetter.from_bytes(r.value)
            for r in await wait_for_records(kafka_servers, f"dlq-{unique}", 1)
        ]
        assert [(d.stage, d.state_key) for d in letters] == [
            ("norce-validation", "erp|price|SKU-00060|STD|1")
        ]
        assert "PriceSale" in letters[0].reason and letters[0].job_id


async def test_successful_full_import_supersedes_earlier_failed_jobs(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (
        worker,
        env,
        topics,
    ):
        await produce(kafka_servers, topics["price"], [price_change(n, 1) for n in range(30)])
        await wait_applied([worker], "erp", "price", 30)
        # The delta job fails, slowly: the full import is requested while it runs.
        sim.state.set_faults({"fail_next_jobs": 1, "job_extra_lead_time_s": 6.0})
        await trigger_delta(worker, "erp", "price")
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "norce_sync", "full-import", "--source", "erp", "--kind", "price"),
            cwd=ROOT,
            env=worker.env,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(cli.communicate(), timeout=120)
        assert cli.returncode == 0, stderr.decode()[-2000:]
        assert "30/30 rows" in stderr.decode()

        async def superseded() -> bool:
            records = (await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])).values()
            return any(r.status == "failed" and r.superseded for r in records)

        await wait_until(superseded, what="failed delta marked superseded")
        await asyncio.sleep(3)  # a retry, if one were wrongly made, would show by now
        status = await delta_status(worker, "erp", "price")
        assert status["pending"] == 0 and not status["open_jobs"]
        assert sim.state.stats()["jobs"]["total"] == 2  # the failed delta and the full file
        prices = norce_prices(sim)
        assert prices == {f"SKU-{n:05d}": n * 100 + 1 for n in range(30)}
        records = list((await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])).values())
        assert sorted((r.mode, r.status) for r in records) == [
            ("delta", "failed"),
            ("full", "succeeded"),
        ]

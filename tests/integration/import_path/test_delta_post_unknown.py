"""A delta POST whose answer is lost (Norce made the job, the worker saw a 504) is not
posted again: the job is found through ``Job/List`` and tracked (issue 23, item 12)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from norce_simulator import SimulatorServer
from tests.support.broker import ROOT
from tests.support.debezium import price_change
from tests.support.kafka import produce
from tests.support.stack import (
    deliver,
    import_worker,
    ledger,
    trigger_delta,
    wait_applied,
    wait_until,
)


async def test_a_lost_post_answer_adopts_norces_job_instead_of_posting_twice(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (worker, env, topics):
        await produce(kafka_servers, topics["price"], [price_change(n, 1) for n in range(10)])
        await wait_applied([worker], "erp", "price", 10)
        sim.state.set_faults({"connect": {"lose_answer_next": 1, "status": 504}})
        assert len((await trigger_delta(worker, "erp", "price"))["batches"]) == 1
        expected = {f"SKU-{n:05d}": float(n * 100 + 1) for n in range(10)}
        await deliver(worker, sim, expected)
        # One POST made one job: before, the client retried the POST and Norce ran two
        # jobs, the first one unknown to the ledger (so no gate could wait for it).
        assert len(sim.state.jobs) == 1, sorted(sim.state.jobs)
        (job_id,) = sim.state.jobs
        records = list((await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])).values())
        assert [(r.job_id, r.status, r.item_count) for r in records] == [(job_id, "succeeded", 10)]


async def test_a_full_import_whose_answer_is_lost_is_not_posted_twice(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (worker, env, topics):
        await produce(kafka_servers, topics["price"], [price_change(n, 1) for n in range(10)])
        await wait_applied([worker], "erp", "price", 10)
        sim.state.set_faults({"connect": {"lose_answer_next": 1, "status": 502}})
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "norce_sync", "full-import", "--source", "erp", "--kind", "price"),
            cwd=ROOT,
            env=worker.env,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(cli.communicate(), timeout=120)
        assert cli.returncode == 0, stderr.decode()[-2000:]
        app_id = env["NORCE_SYNC_APP_ID"]

        async def tracked() -> bool:  # posted and polled: every POST is behind us
            return any(
                r.status == "succeeded" for r in (await ledger(kafka_servers, app_id)).values()
            )

        await wait_until(tracked, timeout=60, what="the full import's job to succeed")
        assert len(sim.state.jobs) == 1, sorted(sim.state.jobs)
        (job_id,) = sim.state.jobs
        records = list((await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])).values())
        assert [(r.mode, r.job_id, r.status) for r in records] == [("full", job_id, "succeeded")]

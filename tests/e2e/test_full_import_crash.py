"""One request, one full import: the worker that runs an on-demand full import is killed
right after its POST (before the JobId is recorded); after the restart the request runs
again, finds the job Norce already has, and tracks it instead of posting a second file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from norce_simulator import SimulatorConfig, SimulatorServer
from tests.support.broker import ROOT
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce
from tests.support.stack import (
    FAULTY,
    ledger,
    seed_skus,
    start_worker,
    wait_applied,
    wait_until,
    worker_env,
)
from tests.support.stack import write_config as write_sync_config
from tests.support.worker import SESSION_TIMEOUT_S

pytestmark = pytest.mark.e2e

KEYS = 500
CLI = [sys.executable, "-m", "norce_sync"]


def change(n: int) -> tuple[bytes, dict]:
    row = price_row(f"SKU-{n:06d}", float(n + 1))
    return key_bytes(row, PRICE_KEY), envelope("prices", "u", row, lsn=1_000 + n)


async def test_sigkill_after_full_import_post_posts_one_job_per_request(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    config, topics = write_sync_config(tmp_path, unique)
    sim_config = SimulatorConfig(port=0, workers=2, lead_time_s=0.3, token_rate_limit=False)
    async with SimulatorServer(sim_config) as sim:
        seed_skus(sim, (f"SKU-{n:06d}" for n in range(KEYS)))
        env = worker_env(
            kafka_servers,
            unique,
            sim.url,
            config,
            tmp_path,
            NORCE_SYNC_BROKER_SESSION_TIMEOUT_S=SESSION_TIMEOUT_S,
        )
        crashing = await start_worker(
            FAULTY, {**env, "TEST_CRASH_AFTER_POST": "true"}, tmp_path / "w1.log"
        )
        await produce(kafka_servers, topics["price"], [change(n) for n in range(KEYS)])
        await wait_applied([crashing], "erp", "price", KEYS)
        # Request only: the CLI returns once the request is on the commands topic.
        request = await asyncio.to_thread(
            subprocess.run,
            [*CLI, "full-import", "--source", "erp", "--kind", "price", "--no-wait"],
            cwd=ROOT,
            env=crashing.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert request.returncode == 0, request.stderr[-2000:]
        await asyncio.to_thread(crashing.proc.wait, 120)
        assert crashing.proc.returncode == -9, crashing.tail()
        assert sim.state.stats()["jobs"]["total"] == 1  # Norce got the full file

        restarted = await start_worker("norce_sync", env, tmp_path / "w2.log")
        try:

            async def tracked_to_the_end() -> bool:
                records = (await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])).values()
                full = [r for r in records if r.mode == "full"]
                return (
                    bool(full)
                    and all(r.is_final for r in full)
                    and any(r.status == "succeeded" for r in full)
                )

            await wait_until(tracked_to_the_end, timeout=120, what="full import tracked")
            # A second POST, if one were wrongly made, would have been made before the
            # adopted job was tracked to its end.
        finally:
            restarted.stop()
        full_jobs = [j for j in sim.state.jobs.values() if j.header.FullFile]
        assert len(full_jobs) == 1, [(j.id, j.totals) for j in full_jobs]
        assert full_jobs[0].totals == KEYS
        records = [
            r
            for r in (await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])).values()
            if r.mode == "full"
        ]
        succeeded = [r for r in records if r.status == "succeeded"]
        assert len(succeeded) == 1 and succeeded[0].job_id == full_jobs[0].id

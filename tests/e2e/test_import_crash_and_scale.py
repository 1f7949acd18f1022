"""Worker processes killed and scaled: the import path keeps every change and never
sends an older value."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from norce_simulator import SimulatorConfig, SimulatorServer
from tests.support.broker import ROOT
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce
from tests.support.stack import (
    FAULTY,
    delta_status,
    ledger,
    seed_skus,
    start_worker,
    start_workers,
    stop_workers,
    trigger_delta,
    wait_applied,
    wait_until,
    worker_env,
    write_config,
)
from tests.support.worker import SESSION_TIMEOUT_S

pytestmark = pytest.mark.e2e


def change(n: int, version: int) -> tuple[bytes, dict]:
    row = price_row(f"SKU-{n:06d}", float(n * 100 + version))
    return key_bytes(row, PRICE_KEY), envelope("prices", "u", row, lsn=1_000_000 + version)


async def test_sigkill_between_post_and_job_id_loses_nothing(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    config, topics = write_config(tmp_path, unique)
    keys = range(200)
    sim_config = SimulatorConfig(port=0, workers=2, lead_time_s=0.3, token_rate_limit=False)
    async with SimulatorServer(sim_config) as sim:
        seed_skus(sim, (f"SKU-{n:06d}" for n in keys))
        # A short session timeout: the killed worker's partitions come back sooner.
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
        await produce(kafka_servers, topics["price"], [change(n, 1) for n in keys])
        await wait_applied([crashing], "erp", "price", len(keys))
        with pytest.raises(httpx.HTTPError):
            await trigger_delta(crashing, "erp", "price")  # POSTs, then SIGKILLs itself
        await asyncio.to_thread(crashing.proc.wait, 30)
        assert crashing.proc.returncode == -9
        assert sim.state.stats()["jobs"]["total"] == 1  # Norce got the job

        # While the worker is down, half the keys change again.
        await produce(kafka_servers, topics["price"], [change(n, 2) for n in keys if n % 2])

        restarted = await start_worker(
            "norce_sync", {**env, "NORCE_SYNC_ORPHAN_GRACE_S": "1"}, tmp_path / "w2.log"
        )
        expected = {f"SKU-{n:06d}": n * 100 + (2 if n % 2 else 1) for n in keys}
        try:

            async def everything_sent() -> bool:
                status = await delta_status(restarted, "erp", "price")
                if status["pending"] and not status["open_jobs"]:
                    await trigger_delta(restarted, "erp", "price")
                jobs = sim.state.stats()["jobs"]
                finished = jobs["by_status"].get("Succeeded", 0) == jobs["total"]
                prices = {r["PartNo"]: r["PriceSale"] for r in sim.state.list_items("price")}
                idle = status["pending"] == 0 and not status["open_jobs"] and finished
                return idle and prices == expected

            try:
                await wait_until(everything_sent, timeout=150, what="every key sent again")
            except TimeoutError:
                # Say what was left, so a failure here can be read without a rerun.
                status = await delta_status(restarted, "erp", "price")
                prices = {r["PartNo"]: r["PriceSale"] for r in sim.state.list_items("price")}
                wrong = {k: (prices.get(k), v) for k, v in expected.items() if prices.get(k) != v}
                raise AssertionError(
                    f"not delivered: status={status} sim={sim.state.stats()['jobs']} "
                    f"{len(wrong)} wrong prices, e.g. {list(wrong.items())[:5]}"
                ) from None
        finally:
            restarted.stop()

        for n in keys:
            written = [
                h["values"]["PriceSale"] for h in sim.state.history("price", f"SKU-{n:06d}|STD|1")
            ]
            assert written == sorted(written), f"SKU-{n:06d} went back: {written}"
        records = await ledger(kafka_servers, env["NORCE_SYNC_APP_ID"])
        assert [r.status for r in records.values() if r.job_id is None] == ["lost"]


async def test_two_workers_full_import_is_one_job_with_every_key_once(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    keys = 100_000
    config, topics = write_config(tmp_path, unique)
    sim_config = SimulatorConfig(
        port=0, workers=2, lead_time_s=0.2, token_rate_limit=False, record_history=False
    )
    async with SimulatorServer(sim_config) as sim:
        seed_skus(sim, (f"SKU-{n:06d}" for n in range(keys)))
        env = worker_env(kafka_servers, unique, sim.url, config, tmp_path)
        # Started side by side: they join the group together (one rebalance, not two).
        first, second = await start_workers(
            "norce_sync", (env, tmp_path / "w1.log"), (env, tmp_path / "w2.log")
        )
        try:
            await produce(kafka_servers, topics["price"], [change(n, 1) for n in range(keys)])
            await wait_applied([first, second], "erp", "price", keys, timeout=480)
            both = [await delta_status(w, "erp", "price") for w in (first, second)]
            assert all(s["pending"] > 0 for s in both), "both workers should hold keys"

            cli = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "norce_sync",
                    "full-import",
                    "--source",
                    "erp",
                    "--kind",
                    "price",
                ],
                cwd=ROOT,
                env={**first.env},
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert cli.returncode == 0, cli.stderr[-2000:]
            assert f"{keys:,}/{keys:,} rows" in cli.stderr
        finally:
            await stop_workers(first, second)
        jobs = list(sim.state.jobs.values())
        assert len(jobs) == 1
        assert jobs[0].totals == keys
        assert sim.state.stats()["items"]["price"] == keys
        logs = [(tmp_path / f).read_text() for f in ("w1.log", "w2.log")]
        assert sum("full import" in text and "with 100000 rows" in text for text in logs) == 1

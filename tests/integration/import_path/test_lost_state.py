"""Issue 23 item 5, the issue's 1,000-price scenario made smaller: prices imported and
confirmed by a full import; the state topic deleted and the worker's store wiped (an
operator's error on a new machine); a few prices changed. The next full import used to
send only those with ``FullFile: true`` and Norce deactivated every other price. Now it
is refused (the job's error says why), Norce keeps every price, the worker says at start
that the changelog is empty, and ``--force`` still sends it when that is intended."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from norce_simulator import SimulatorServer
from tests.support.broker import ROOT
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import create_topics, produce
from tests.support.stack import (
    deliver,
    norce_prices,
    start_worker,
    wait_applied,
    wait_until,
    worker_env,
    write_config,
)
from tests.support.worker import WorkerProcess

PRICES = 60
CHANGED = 6


def change(n: int, price: float) -> tuple[bytes, dict]:
    row = price_row(f"SKU-{n:05d}", price)
    return key_bytes(row, PRICE_KEY), envelope("prices", "u", row)


async def full_import(worker: WorkerProcess, *extra: str) -> tuple[int, str]:
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "norce_sync", "full-import", "--source", "erp", "--kind", "price", *extra),
        cwd=ROOT,
        env=worker.env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(cli.communicate(), timeout=120)
    assert cli.returncode is not None
    return cli.returncode, stderr.decode()


def deactivated(sim: SimulatorServer) -> int:
    return sum(job.deactivated or 0 for job in sim.state.jobs.values())


async def test_a_lost_state_changelog_does_not_deactivate_the_catalogue(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    config, topics = write_config(tmp_path, unique)
    env = worker_env(kafka_servers, unique, sim.url, config, tmp_path)
    worker = await start_worker("norce_sync", env, tmp_path / "worker.log")
    try:
        await produce(kafka_servers, topics["price"], [change(n, 100 + n) for n in range(PRICES)])
        await wait_applied([worker], "erp", "price", PRICES)
        code, err = await full_import(worker)
        assert code == 0, err[-2000:]
        assert norce_prices(sim) == {f"SKU-{n:05d}": 100 + n for n in range(PRICES)}
    finally:
        worker.stop()

    # The operator's error: the state topic deleted, the worker's data dir wiped.
    state_topic = f"{env['NORCE_SYNC_APP_ID']}-state.{topics['price']}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_servers)
    await admin.start()
    try:
        await admin.delete_topics([state_topic])

        async def gone() -> bool:
            return state_topic not in await admin.list_topics()

        await wait_until(gone, what="state topic deleted")
    finally:
        await admin.close()
    shutil.rmtree(tmp_path / "data")

    worker = await start_worker("norce_sync", env, tmp_path / "worker2.log")
    try:
        changed = [change(n, 500 + n) for n in range(CHANGED)]
        await produce(kafka_servers, topics["price"], changed)
        await wait_applied([worker], "erp", "price", CHANGED)
        expected = {f"SKU-{n:05d}": (500 if n < CHANGED else 100) + n for n in range(PRICES)}
        await deliver(worker, sim, expected)

        code, err = await full_import(worker)
        assert code == 1
        assert f"would deactivate {PRICES - CHANGED}" in err and "--force" in err
        assert deactivated(sim) == 0 and norce_prices(sim) == expected
        log = (tmp_path / "worker2.log").read_text()
        assert "state changelog" in log and "is empty" in log

        # Intended (the catalogue really shrank): --force sends it.
        code, err = await full_import(worker, "--force")
        assert code == 0, err[-2000:]
        assert deactivated(sim) == PRICES - CHANGED
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        worker.stop()


async def test_a_state_topic_without_compaction_is_refused_at_start(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    config, topics = write_config(tmp_path, unique)
    env = worker_env(kafka_servers, unique, sim.url, config, tmp_path)
    await create_topics(kafka_servers, [topics["price"]], 4)
    state_topic = f"{env['NORCE_SYNC_APP_ID']}-state.{topics['price']}"
    await create_topics(kafka_servers, [state_topic], 4, {"cleanup.policy": "delete"})
    worker = WorkerProcess("norce_sync", env, tmp_path / "worker.log")
    try:
        await asyncio.to_thread(worker.start, ready_timeout=60)
    except RuntimeError as error:  # the worker exited: what we want
        assert "worker exited" in str(error)
        log = (tmp_path / "worker.log").read_text()
        assert "must be compacted" in log and f"{state_topic} (cleanup.policy=delete)" in log
    else:
        raise AssertionError("the worker started on a state topic with cleanup.policy=delete")
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.kill()

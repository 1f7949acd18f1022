"""Issue 23 item 7: a projection store that is corrupt, or locked by another process on
the same data dir, is rebuilt from its changelog (it is a cache) and the partition is
processed. It used to raise in the assignment handler, which aiokafka only logs: the
partitions stayed assigned but never opened, their records fetched and dropped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from rocksdict import Rdict

from agents.imports.store import rocksdb_options
from norce_simulator import SimulatorServer
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce
from tests.support.stack import deliver, import_worker, wait_applied, worker_env, write_config
from tests.support.worker import WorkerProcess

KEYS = 40


def change(n: int, price: float) -> tuple[bytes, dict]:
    row = price_row(f"SKU-{n:05d}", price)
    return key_bytes(row, PRICE_KEY), envelope("prices", "u", row)


async def test_corrupt_and_locked_stores_are_rebuilt_from_the_changelog(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (worker, env, topics):
        await produce(kafka_servers, topics["price"], [change(n, 100 + n) for n in range(KEYS)])
        await wait_applied([worker], "erp", "price", KEYS)
        await deliver(worker, sim, {f"SKU-{n:05d}": 100 + n for n in range(KEYS)})
    stores = Path(env["NORCE_SYNC_DATA_DIR"]) / env["NORCE_SYNC_APP_ID"] / "projection"
    paths = sorted(stores.glob(f"{topics['price']}-*"))
    assert len(paths) == 4
    # Partitions 0 and 1: corrupt (RocksDB's CURRENT names a manifest that is not there).
    for path in paths[:2]:
        (path / "CURRENT").write_text("MANIFEST-999999\n")
    # Partitions 2 and 3: locked by "another worker" on the same data dir.
    holders = [Rdict(str(path), rocksdb_options()) for path in paths[2:]]
    try:
        async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (worker, _, _):
            async with httpx.AsyncClient(timeout=5) as client:
                ready = (await client.get(f"{worker.url}/ready")).json()
            assert ready["unprocessed_partitions"] == []
            await produce(kafka_servers, topics["price"], [change(n, 200 + n) for n in range(KEYS)])
            await wait_applied([worker], "erp", "price", KEYS)
            await deliver(worker, sim, {f"SKU-{n:05d}": 200 + n for n in range(KEYS)})
            log = (tmp_path / "worker.log").read_text()
            assert "locked by another process" in log and "unusable" in log
            assert worker.proc is not None and worker.proc.poll() is None
    finally:
        for holder in holders:
            holder.close()


async def test_a_partition_that_cannot_be_opened_stops_the_worker_with_a_clear_error(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    config, topics = write_config(tmp_path, unique)
    env = worker_env(kafka_servers, unique, sim.url, config, tmp_path)
    # Partition 0's store path is a file: it cannot be opened, nor removed and rebuilt.
    stores = Path(env["NORCE_SYNC_DATA_DIR"]) / env["NORCE_SYNC_APP_ID"] / "projection"
    stores.mkdir(parents=True)
    (stores / f"{topics['price']}-0").write_text("not a store")
    worker = WorkerProcess("norce_sync", env, tmp_path / "worker.log")
    try:
        with pytest.raises(RuntimeError, match="worker exited"):
            await asyncio.to_thread(worker.start, ready_timeout=90)
        log = (tmp_path / "worker.log").read_text()
        assert f"projection {topics['price']}[0] could not be opened, stopping the worker" in log
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.kill()

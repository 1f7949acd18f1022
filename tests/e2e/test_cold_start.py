"""A worker's first start on a broker that has just started and holds none of the app's
topics (a fresh machine): its first delta job is tracked to ``succeeded``.

The race this guards against: topics created at start but not yet in the broker's
metadata when the group was assigned ("Ignoring missing topic"), so the agent that folds
job events never got its partition and the jobs view stayed empty.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from norce_simulator import SimulatorConfig, SimulatorServer
from tests.support.broker import PrivateBroker
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce
from tests.support.stack import (
    seed_skus,
    start_worker,
    trigger_delta,
    wait_applied,
    wait_until,
    worker_env,
    write_config,
)

pytestmark = pytest.mark.e2e

KEYS = 50


@pytest.fixture
def fresh_broker() -> Iterator[PrivateBroker]:
    broker = PrivateBroker("norce-sync-kafka-cold-")
    broker.up()  # returns as soon as the broker answers a metadata request
    try:
        yield broker
    finally:
        broker.down()


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    config = SimulatorConfig(port=0, workers=2, lead_time_s=0.2, token_rate_limit=False)
    async with SimulatorServer(config) as server:
        seed_skus(server, (f"SKU-{n:05d}" for n in range(KEYS)))
        yield server


async def jobs(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{url}/jobs/")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


async def test_first_start_on_a_fresh_broker_tracks_the_first_job(
    fresh_broker: PrivateBroker, sim: SimulatorServer, tmp_path: Path
) -> None:
    unique = uuid.uuid4().hex[:10]
    config, topics = write_config(tmp_path, unique)
    env = worker_env(fresh_broker.servers, unique, sim.url, config, tmp_path)
    log = tmp_path / "worker.log"
    worker = await start_worker("norce_sync", env, log)
    try:
        changes = [
            (key_bytes(row, PRICE_KEY), envelope("prices", "u", row))
            for row in (price_row(f"SKU-{n:05d}", float(n)) for n in range(KEYS))
        ]
        await produce(fresh_broker.servers, topics["price"], changes)
        await wait_applied([worker], "erp", "price", KEYS)
        [batch] = (await trigger_delta(worker, "erp", "price"))["batches"]

        async def succeeded() -> bool:
            listed = (await jobs(worker.url))["jobs"]
            return any(j["status"] == "succeeded" for j in listed)

        try:
            await wait_until(succeeded, timeout=60, what="the first job tracked to succeeded")
        except TimeoutError as error:
            raise AssertionError(
                f"batch {batch}: jobs view {await jobs(worker.url)}; "
                f"simulator jobs {sim.state.stats()['jobs']}"
            ) from error
        [job] = (await jobs(worker.url))["jobs"]
        assert job["status"] == "succeeded"
        assert job["job_id"] is not None
    finally:
        worker.stop()
    # The race's traces: a topic of the app used before the broker listed it.
    text = log.read_text(errors="replace")
    assert "Ignoring missing topic" not in text, "the group was assigned without a topic"
    early = [line for line in text.splitlines() if "not found in cluster metadata" in line]
    assert not [line for line in early if env["NORCE_SYNC_APP_ID"] in line], early

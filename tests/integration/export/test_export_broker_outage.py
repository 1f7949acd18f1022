"""With the broker down, intake answers 503; Norce's next retry after it is back gets 200
and the event reaches the targets.

Uses a private broker (tools/kafka, own ports and data dir) so the session broker that
other tests share is never stopped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
import pytest_asyncio

from norce.connect_header import ConnectHeader
from norce_simulator import SimulatorServer
from tests.integration.export.support import (
    eventually,
    norce_client,
    records_by_key,
    sim_config,
    start_worker,
    stop_worker,
    subscribe,
    worker_env,
)
from tests.support.broker import PrivateBroker

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateBroker]:
    private = PrivateBroker("norce-sync-kafka-outage-")
    private.up()
    try:
        yield private
    finally:
        private.down()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[SimulatorServer]:
    # Norce retries a failed delivery; here every second so the test is quick.
    config = sim_config(webhook_time_factor=1.0, webhook_retry_schedule=(1.0,) * 120)
    async with SimulatorServer(config) as server:
        yield server


async def test_broker_down_answers_503_and_the_retry_after_it_is_back_gets_through(
    broker: PrivateBroker, sim: SimulatorServer, tmp_path: Path
) -> None:
    app_id = f"exp-out-{uuid.uuid4().hex[:8]}"
    env = worker_env(
        app_id,
        broker.servers,
        sim,
        tmp_path / "data",
        NORCE_SYNC_WEBHOOK_ACK_TIMEOUT_S="1.5",
        NORCE_SYNC_EXPORT_WINDOW_S="0.2",
    )
    worker = await start_worker(env, tmp_path / "worker.log")
    try:
        subscribe(sim, worker.url, "SkuPriceChangedNotification")
        sim.state.seed(
            {
                "sku": [{"PartNo": "O1", "EanCode": "1"}],
                "price": [{"PartNo": "O1", "PriceListCode": "STD", "PriceSale": 1.0}],
            }
        )
        await asyncio.to_thread(broker.down)
        async with norce_client(sim) as norce:
            await norce.connect.import_sku_price_lists(
                ConnectHeader(AccountId=1),
                [{"PartNo": "O1", "PriceListCode": "STD", "PriceSale": 123.0}],
            )

        async def refused() -> bool:
            return any(a["status"] == 503 for d in sim.state.deliveries for a in d.attempts)

        await eventually(refused, timeout=30, what="intake to answer 503", every=0.2)
        await asyncio.to_thread(broker.up)

        [delivery] = sim.state.deliveries

        async def delivered() -> bool:
            return delivery.state == "ok"

        await eventually(delivered, timeout=60, what="a retry to get 200")
        statuses = [a["status"] for a in delivery.attempts]
        assert statuses[-1] == 200
        assert 503 in statuses
        assert set(statuses) <= {503, 200}, statuses  # always answered, never timed out

        async def exported() -> bool:
            by_key = await records_by_key(broker.servers, f"{app_id}.out.search.sku")
            return b"O1" in by_key

        await eventually(exported, timeout=60, what="the event to reach the targets")
        by_key = await records_by_key(broker.servers, f"{app_id}.out.search.sku")
        assert orjson.loads(by_key[b"O1"][-1].value)["price"] == 123.0
    finally:
        assert await stop_worker(worker) == 0, worker.tail()

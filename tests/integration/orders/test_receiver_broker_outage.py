"""With the broker down, the order receiver answers 503 ``Failed`` (Norce retries); the
retry after the broker is back is answered OK and the order is on the orders topic once.

Uses a private broker (tools/kafka, own ports and data dir) so the session broker that
other tests share is never stopped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from norce_simulator import SimulatorServer
from tests.integration.export.support import eventually, sim_config, start_worker, stop_worker
from tests.support.broker import PrivateBroker
from tests.support.orders import (
    ORDERS_PASSWORD,
    ORDERS_USER,
    orders_env,
    refs_on,
    write_orders_config,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateBroker]:
    private = PrivateBroker("norce-sync-kafka-orders-outage-")
    private.up()
    try:
        yield private
    finally:
        private.down()


async def test_broker_down_answers_503_and_norces_retry_after_it_is_back_gets_ok(
    broker: PrivateBroker, tmp_path: Path
) -> None:
    app_id = f"ord-out-{uuid.uuid4().hex[:8]}"
    async with SimulatorServer(sim_config(webhook_time_factor=1.0)) as sim:
        sim.orders.retry_schedule = (1.0,) * 180  # Norce retries; here every second
        config = write_orders_config(tmp_path, app_id)
        env = orders_env(app_id, broker.servers, sim.url, config, tmp_path / "data")
        env["NORCE_SYNC_ORDERS_ACK_TIMEOUT_S"] = "1.5"
        worker = await start_worker(env, tmp_path / "worker.log")
        try:
            async with httpx.AsyncClient(base_url=sim.url) as http:
                await http.post(
                    "/_sim/orders/receiver",
                    json={
                        "url": f"{worker.url}/norce/orders",
                        "username": ORDERS_USER,
                        "password": ORDERS_PASSWORD,
                    },
                )
                await asyncio.to_thread(broker.down)
                await http.post("/_sim/orders", json={"count": 1, "prefix": "OUT"})
            placement = sim.orders.placements["OUT0"]

            async def refused() -> bool:
                return any(a["status"] == 503 for a in placement.attempts)

            await eventually(refused, timeout=30, what="the receiver to answer 503", every=0.2)
            refusal = next(a for a in placement.attempts if a["status"] == 503)
            assert refusal["answer"]["StatusCode"] == "Failed"
            await asyncio.to_thread(broker.up)

            async def accepted() -> bool:
                return placement.state == "ok"

            await eventually(accepted, timeout=120, what="a retry to be answered OK")
            statuses = [a["status"] for a in placement.attempts]
            assert set(statuses) <= {503, 200}, statuses  # always answered, never timed out

            async def forwarded() -> bool:
                return "OUT0" in await refs_on(broker.servers, f"{app_id}-orders")

            await eventually(forwarded, timeout=60, what="the order on the orders topic")
            assert (await refs_on(broker.servers, f"{app_id}-orders"))["OUT0"] == 1
        finally:
            assert await stop_worker(worker) == 0, worker.tail()

"""The order receiver under crashes: Norce (the simulator) places 1,000 orders while the
worker is SIGKILLed three times. Every order ends answered OK (Norce's retries carry it
over the outages), is on the orders topic and on each target topic exactly once by
ClientOrderRef, and every order answered OK before a kill is in Kafka right after it
(durable before the answer)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from norce_simulator import SimulatorServer
from tests.integration.export.support import sim_config
from tests.support.kafka import read_all
from tests.support.orders import (
    ORDER_TARGETS,
    ORDERS_PASSWORD,
    ORDERS_USER,
    orders_env,
    refs_on,
    write_orders_config,
)
from tests.support.stack import wait_until
from tests.support.worker import SESSION_TIMEOUT_S, WorkerProcess

pytestmark = pytest.mark.e2e

ORDERS = 1_000
KILL_AT = (150, 450, 750)  # orders answered OK when the worker is killed


def ok_refs(sim: SimulatorServer) -> set[str]:
    return {ref for ref, p in sim.orders.placements.items() if p.state == "ok"}


async def test_orders_survive_three_sigkills_exactly_once(
    kafka_servers: str, tmp_path: Path
) -> None:
    app_id = f"ordk-{uuid.uuid4().hex[:10]}"
    # Norce's retry schedule scaled by 0.05: 0.25 s, 0.5 s, ... about 370 s in all.
    async with SimulatorServer(sim_config(webhook_time_factor=0.05)) as sim:
        config = write_orders_config(tmp_path, app_id)
        env = orders_env(app_id, kafka_servers, sim.url, config, tmp_path / "data")
        env["NORCE_SYNC_BROKER_SESSION_TIMEOUT_S"] = SESSION_TIMEOUT_S  # dead members leave fast
        worker = WorkerProcess("norce_sync", env, tmp_path / "worker.log")
        await asyncio.to_thread(worker.start)
        received_topic = f"{app_id}-orders-received"
        async with httpx.AsyncClient(base_url=sim.url) as http:
            await http.post(
                "/_sim/orders/receiver",
                json={
                    "url": f"{worker.url}/norce/orders",
                    "username": ORDERS_USER,
                    "password": ORDERS_PASSWORD,
                    "concurrency": 4,
                },
            )
            placed = await http.post("/_sim/orders", json={"count": ORDERS, "prefix": "K"})
            assert placed.json() == {"placed": ORDERS}
        try:
            for threshold in KILL_AT:
                await wait_until(
                    lambda t=threshold: len(ok_refs(sim)) >= t,
                    timeout=180,
                    what=f"{threshold} orders answered OK",
                )
                answered = ok_refs(sim)
                worker.kill()
                durable = set(await refs_on(kafka_servers, received_topic))
                assert answered <= durable, f"answered OK, not in Kafka: {answered - durable}"
                await asyncio.to_thread(worker.start)
            await wait_until(
                lambda: all(p.state != "pending" for p in sim.orders.placements.values()),
                timeout=300,
                what="every placement settled",
            )
            states = [p.state for p in sim.orders.placements.values()]
            assert states.count("ok") == ORDERS, {s: states.count(s) for s in set(states)}
            retried = sum(1 for p in sim.orders.placements.values() if len(p.attempts) > 1)
            assert retried > 0  # the kills did hit calls in flight or in the outage
            refs = {f"K{n}" for n in range(ORDERS)}

            async def all_forwarded() -> bool:
                for topic in (
                    f"{app_id}-orders",
                    *(f"{app_id}.out.{t}.order" for t in ORDER_TARGETS),
                ):
                    if not refs <= set(await refs_on(kafka_servers, topic)):
                        return False
                return True

            await wait_until(all_forwarded, timeout=120, what="every order forwarded")
            for topic in (f"{app_id}-orders", *(f"{app_id}.out.{t}.order" for t in ORDER_TARGETS)):
                counts = await refs_on(kafka_servers, topic)
                assert set(counts) == refs, topic
                twice = {r: c for r, c in counts.items() if c != 1}
                assert not twice, f"{topic}: {len(twice)} refs more than once"
            letters = await read_all(kafka_servers, f"{app_id}-dlq")
            assert letters == [], "no order was dead-lettered"
        finally:
            await asyncio.to_thread(worker.stop)

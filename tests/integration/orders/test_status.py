"""ERP order statuses back to Norce on a worker process: 100 orders' status changes,
with replays and changes arriving out of order, reach the simulator's order history in
source order and never backwards, while Connect fails a fifth of the calls; a status for
an order Norce does not know is dead-lettered with Norce's answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from norce_simulator import SimulatorServer
from norce_simulator.orders import Placement, sample_order
from streams.records import DeadLetter
from tests.integration.export.support import eventually, sim_config, start_worker, stop_worker
from tests.support.kafka import produce, read_all
from tests.support.orders import orders_env, status_topic, write_orders_config
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

STATUSES = ("Created", "Confirmed", "Delivered", "Invoiced")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    kafka_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[SimulatorServer, WorkerProcess, str]]:
    tmp = tmp_path_factory.mktemp("status")
    app_id = f"ords-{uuid.uuid4().hex[:10]}"
    async with SimulatorServer(sim_config()) as sim:
        config = write_orders_config(tmp, app_id)
        environ = orders_env(app_id, kafka_servers, sim.url, config, tmp / "data")
        worker = await start_worker(environ, tmp / "worker.log")
        try:
            yield sim, worker, app_id
        finally:
            assert await stop_worker(worker) == 0, worker.tail()


def change(ref: str, version: int) -> tuple[bytes, dict[str, object]]:
    data = {"web_order_no": ref, "status": STATUSES[version - 1], "id": ref}
    return ref.encode(), {"key": ref, "op": "upsert", "version": version, "data": data}


async def test_statuses_reach_norce_in_order_never_backwards_and_unknown_is_dead_lettered(
    kafka_servers: str, stack: tuple[SimulatorServer, WorkerProcess, str]
) -> None:
    sim, worker, app_id = stack
    refs = [f"S{uuid.uuid4().hex[:8]}-{n}" for n in range(100)]
    for ref in refs:  # orders Norce knows (placed at checkout)
        sim.orders.placements[ref] = Placement(ref, sample_order(ref), state="ok")
        sim.orders.order_ids[ref] = len(sim.orders.order_ids) + 1
    sim.state.set_faults({"connect": {"error_rate": 0.2, "status": 503}})
    swapped = set(refs[10:20])  # v3 arrives before v2: v2 is then older, skipped
    messages = []
    for ref in refs:
        order = (1, 3, 2, 4) if ref in swapped else (1, 2, 3, 4)
        messages += [change(ref, v) for v in order]
    messages += [change(ref, 2) for ref in refs[:10]]  # a replay after the newest
    unknown = f"NOPE-{uuid.uuid4().hex[:6]}"
    messages.append(change(unknown, 1))
    await produce(kafka_servers, status_topic(app_id), messages)

    def expected(ref: str) -> list[str]:
        if ref in swapped:
            return ["Created", "Delivered", "Invoiced"]
        return list(STATUSES)

    def history(ref: str) -> list[str]:
        return [s["OrderStatus"] for s in sim.orders.statuses.get(ref, [])]

    async def delivered() -> bool:
        return all(history(r)[-1:] == ["Invoiced"] for r in refs)

    await eventually(delivered, timeout=120, what="every order's last status in Norce")
    assert {r: history(r) for r in refs} == {r: expected(r) for r in refs}

    async def dead_lettered() -> list[DeadLetter]:
        letters = [
            DeadLetter.model_validate_json(r.value)
            for r in await read_all(kafka_servers, f"{app_id}-dlq")
        ]
        return [d for d in letters if d.key == unknown.encode()]

    async def has_letter() -> bool:
        return bool(await dead_lettered())

    await eventually(has_letter, timeout=60, what="the unknown order's dead letter")
    (letter,) = await dead_lettered()
    assert letter.stage == "order-status"
    assert "was not found" in letter.reason and "400" in letter.reason
    async with httpx.AsyncClient() as http:
        stats = (await http.get(f"{worker.url}/orders/")).json()["statuses"]
    assert stats["sent"] == 100 * 4 - len(swapped) and stats["failed"] == 1
    assert stats["stale"] == len(swapped) + 10
    sim.state.set_faults({})

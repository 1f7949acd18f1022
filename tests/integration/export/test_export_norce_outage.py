"""Norce refusing the worker (a wrong client secret) is an outage, not the events' fault:
nothing is dead-lettered, ``/ready`` names Norce, and once the secret is right every
event reaches the targets (issue 23, item 3)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import pytest_asyncio

from norce_simulator import SimulatorServer
from tests.integration.export.support import (
    TOKEN,
    TOKEN_HEADER,
    eventually,
    records_by_key,
    sim_config,
    start_worker,
    stop_worker,
    worker_env,
)
from tests.support.kafka import read_all

pytestmark = pytest.mark.asyncio(loop_scope="module")

TYPO = "demo-secret-typo"  # the operator's typo: the simulator knows "demo-secret"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(sim_config()) as server:
        yield server


async def test_a_wrong_client_secret_dead_letters_nothing_and_delivers_after_the_fix(
    kafka_servers: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    app_id = f"exp-auth-{uuid.uuid4().hex[:8]}"
    env = worker_env(
        app_id,
        kafka_servers,
        sim,
        tmp_path / "data",
        NORCE_SYNC_NORCE_CLIENT_SECRET=TYPO,
        NORCE_SYNC_EXPORT_WINDOW_S="0.2",
        NORCE_SYNC_NORCE_OUTAGE_RETRY_MAX_S="1",
    )
    part_nos = [f"AUTH{i:02d}" for i in range(20)]
    sim.state.seed(
        {
            "sku": [{"PartNo": p, "EanCode": f"ean-{p}"} for p in part_nos],
            "price": [{"PartNo": p, "PriceListCode": "STD", "PriceSale": 5.0} for p in part_nos],
        }
    )
    log = tmp_path / "worker.log"
    worker = await start_worker(env, log)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for p in part_nos:
                answer = await http.post(
                    f"{worker.url}/norce/events/SkuPriceChangedNotification",
                    content=orjson.dumps({"ClientId": 1, "ApplicationId": 2, "PartNo": p}),
                    headers={TOKEN_HEADER: TOKEN},
                )
                assert answer.status_code == 200, answer.text

            async def norce_reported_out() -> bool:
                body = (await http.get(f"{worker.url}/ready")).json()
                names = [d["name"] for d in body.get("dependencies_down", [])]
                return "Norce" in names and sim.state.calls["identity:token"] >= 3

            await eventually(norce_reported_out, timeout=60, what="/ready to name Norce")
            ready = await http.get(f"{worker.url}/ready")
            assert ready.status_code == 200  # intake still stores webhooks
            (norce,) = [d for d in ready.json()["dependencies_down"] if d["name"] == "Norce"]
            assert "401" in norce["reason"] and TYPO not in ready.text
            assert await read_all(kafka_servers, f"{app_id}-dlq", timeout=2) == []

            # The operator fixes it on Norce's side (here: the simulator accepts the secret).
            sim.state.config = sim.state.config.model_copy(update={"client_secret": TYPO})

            async def all_delivered() -> bool:
                out = await records_by_key(kafka_servers, f"{app_id}.out.search.sku")
                return all(
                    p.encode() in out and out[p.encode()][-1].value is not None for p in part_nos
                )

            await eventually(all_delivered, timeout=90, what="every SKU in the target topic")

            async def norce_back() -> bool:
                body = (await http.get(f"{worker.url}/ready")).json()
                return not body.get("dependencies_down")

            await eventually(norce_back, timeout=30, what="/ready to show Norce back")
        assert await read_all(kafka_servers, f"{app_id}-dlq", timeout=2) == []
    finally:
        assert await stop_worker(worker) == 0, worker.tail()
    text = log.read_text()
    assert text.count("Norce unavailable") == 1, worker.tail()
    assert text.count("Norce answers again") == 1
    assert TYPO not in text

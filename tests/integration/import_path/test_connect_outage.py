"""Connect refusing the worker (a wrong ERP client secret) is an outage: the delta's keys
stay pending, nothing is dead-lettered, ``/ready`` names Norce, and once the secret is
right every change reaches Norce (issue 23, item 3, the Connect side)."""

from __future__ import annotations

from pathlib import Path

import httpx

from norce_simulator import SimulatorConfig, SimulatorServer
from tests.support.debezium import price_change
from tests.support.kafka import produce, read_all
from tests.support.stack import (
    deliver,
    import_worker,
    seed_skus,
    trigger_delta,
    wait_applied,
    wait_until,
)


async def test_a_wrong_connect_secret_keeps_keys_pending_and_delivers_after_the_fix(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    config = SimulatorConfig(
        port=0,
        workers=2,
        lead_time_s=0.2,
        token_rate_limit=False,
        extra_clients={"norce-sync-erp": "rotated-secret"},  # the worker still has the old
    )
    async with (
        SimulatorServer(config) as sim,
        import_worker(
            kafka_servers,
            unique,
            tmp_path,
            sim.url,
            env_extra={"NORCE_SYNC_NORCE_OUTAGE_RETRY_MAX_S": "1"},
        ) as (worker, env, topics),
    ):
        seed_skus(sim, [f"SKU-{n:05d}" for n in range(10)])  # the tenant's catalogue
        await produce(kafka_servers, topics["price"], [price_change(n, 1) for n in range(10)])
        await wait_applied([worker], "erp", "price", 10)
        assert (await trigger_delta(worker, "erp", "price"))["batches"] == []

        async def norce_named() -> bool:
            async with httpx.AsyncClient(timeout=5) as http:
                body = (await http.get(f"{worker.url}/ready")).json()
            return any(d["name"] == "Norce" for d in body["dependencies_down"])

        await wait_until(norce_named, timeout=30, what="/ready to name Norce")
        # The operator puts the right secret in place (here: Norce accepts the worker's).
        sim.state.config = sim.state.config.model_copy(
            update={"extra_clients": {"norce-sync-erp": "erp-demo-secret"}}
        )
        expected = {f"SKU-{n:05d}": float(n * 100 + 1) for n in range(10)}
        await deliver(worker, sim, expected)
        assert await read_all(kafka_servers, env["NORCE_SYNC_DLQ_TOPIC"], timeout=2) == []
        assert not await norce_named()
    text = (tmp_path / "worker.log").read_text()
    assert text.count("Norce unavailable") == 1
    assert text.count("Norce answers again") == 1

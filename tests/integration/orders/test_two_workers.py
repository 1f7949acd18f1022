"""Two workers of one deployment: Norce's retry of an order landing on the other worker
(which may not own the ref's partition) is still answered OK without a second record, and
a different order under that ref is still a conflict."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from norce_simulator import SimulatorServer
from norce_simulator.orders import sample_order
from tests.integration.export.support import eventually, sim_config, start_worker
from tests.support.orders import basic, orders_env, refs_on, write_orders_config
from tests.support.stack import stop_workers

pytestmark = pytest.mark.asyncio


async def test_a_retry_on_the_other_worker_is_deduplicated_and_conflicts_are_seen(
    kafka_servers: str, tmp_path: Path
) -> None:
    app_id = f"ord2-{uuid.uuid4().hex[:8]}"
    async with SimulatorServer(sim_config()) as sim:
        config = write_orders_config(tmp_path, app_id)
        env = orders_env(app_id, kafka_servers, sim.url, config, tmp_path / "data")
        one, two = await asyncio.gather(
            start_worker({**env, "NORCE_SYNC_DATA_DIR": str(tmp_path / "d1")}, tmp_path / "w1.log"),
            start_worker({**env, "NORCE_SYNC_DATA_DIR": str(tmp_path / "d2")}, tmp_path / "w2.log"),
        )
        try:
            refs = [f"T{uuid.uuid4().hex[:8]}-{n}" for n in range(40)]
            async with httpx.AsyncClient(timeout=30) as http:
                for ref in refs:
                    body = orjson.dumps(sample_order(ref))
                    first = await http.post(
                        f"{one.url}/norce/orders", content=body, headers=basic()
                    )
                    assert first.status_code == 200, first.text
                    retry = await http.post(
                        f"{two.url}/norce/orders", content=body, headers=basic()
                    )
                    assert retry.status_code == 200 and retry.json()["StatusCode"] == "OK"
                changed = orjson.dumps({**sample_order(refs[0]), "CurrencyCode": "EUR"})
                conflict = await http.post(
                    f"{two.url}/norce/orders", content=changed, headers=basic()
                )
                assert conflict.status_code == 409
            received = await refs_on(kafka_servers, f"{app_id}-orders-received")
            assert {r: received[r] for r in refs} == dict.fromkeys(refs, 1)

            async def forwarded() -> bool:
                return set(refs) <= set(await refs_on(kafka_servers, f"{app_id}-orders"))

            await eventually(forwarded, timeout=60, what="orders forwarded")
            stored = await refs_on(kafka_servers, f"{app_id}-orders")
            assert {r: stored[r] for r in refs} == dict.fromkeys(refs, 1)
        finally:
            # Side by side: the second does not sit through the rebalance of the first leaving.
            codes = await stop_workers(one, two)
            assert codes == [0, 0], (codes, one.tail(), two.tail())

"""Reconcile on the real broker and the simulator: drift written into the simulator
directly is found exactly, and ``--repair`` fixes what a delta can fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from norce_simulator import SimulatorServer
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce
from tests.support.reconcile import classes, reconcile_cli
from tests.support.stack import (
    deliver,
    delta_status,
    import_worker,
    norce_prices,
    wait_applied,
    wait_until,
)

N = 60


def change(n: int, price: float) -> tuple[bytes, dict[str, Any]]:
    row = price_row(f"SKU-{n:05d}", price)
    return key_bytes(row, PRICE_KEY), envelope("prices", "u", row)


async def reconcile_via_http(worker: Any) -> dict[str, Any]:
    """Trigger ``POST /reconcile/erp/price`` and wait for its result."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"{worker.url}/reconcile/erp/price")
        assert response.status_code == 202
        request_id = response.json()["request_id"]

        async def result() -> dict[str, Any] | None:
            body = (await client.get(f"{worker.url}/reconcile/")).json()
            found = [r for r in body["results"] if r["request_id"] == request_id]
            return found[0] if found else None

        return await wait_until(result, what="reconcile result")  # type: ignore[no-any-return]


async def test_drift_is_found_exactly_and_repair_fixes_what_a_delta_can(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (worker, _, topics):
        await produce(kafka_servers, topics["price"], [change(n, 100.0 + n) for n in range(N)])
        await wait_applied([worker], "erp", "price", N)
        await deliver(worker, sim)
        # A 0 price sent by the source: Norce keeps the old values.
        await produce(kafka_servers, topics["price"], [change(3, 0.0)])
        await wait_applied([worker], "erp", "price", N + 1)
        await deliver(worker, sim)
        assert norce_prices(sim)["SKU-00003"] == 103.0

        # Drift made in Norce directly (as an admin edit or a lost row would).
        async with httpx.AsyncClient(base_url=sim.url, timeout=10) as control:
            edited = await control.patch(
                "/_sim/items/price", params={"key": "SKU-00001|STD|1"}, json={"PriceSale": 1.5}
            )
            assert edited.status_code == 200
            deleted = await control.delete("/_sim/items/price", params={"key": "SKU-00002|STD|1"})
            assert deleted.status_code == 200
            extra = [
                {"PartNo": "EXTRA-1", "PriceListCode": "STD", "QuantityBreak": 1, "PriceSale": 5},
                {"PartNo": "EXTRA-2", "PriceListCode": "B2B", "QuantityBreak": 1, "PriceSale": 5},
            ]
            assert (await control.post("/_sim/seed", json={"price": extra})).status_code == 200

        first = await reconcile_via_http(worker)
        assert first["status"] == "ok", first
        assert classes(first) == {
            "matching": N - 3, "different": 1, "missing": 1, "absent": 2, "unwritable": 1,
            "pending": 0,
        }  # fmt: skip
        assert (first["state_items"], first["norce_items"]) == (N, N - 1 + 2)
        assert first["different_by_field"] == {"PriceSale": 1}
        assert first["examples"]["different:PriceSale"] == [
            {"key": "SKU-00001|STD|1", "state": 101.0, "norce": 1.5}
        ]
        assert first["examples"]["missing"] == [{"key": "SKU-00002|STD|1"}]
        # Only EXTRA-1 is in a price list the state holds: a full import deactivates it.
        assert first["would_deactivate"] == 1
        assert {e["key"] for e in first["examples"]["absent"]} == {"EXTRA-1|STD|1", "EXTRA-2|B2B|1"}
        assert first["unwritable_by_field"] == {
            "PriceSale": 1, "CostPurchase": 1, "CostUnit": 1, "PriceRecommended": 1,
        }  # fmt: skip
        assert first["examples"]["unwritable:PriceSale"] == [
            {"key": "SKU-00003|STD|1", "state": 0.0, "norce": 103.0}
        ]

        # --repair from the command line: the different and the missing key are queued.
        [repaired], stderr = await reconcile_cli(
            worker, "--source", "erp", "--kind", "price", "--repair"
        )
        assert "Norce items" in stderr  # the progress bar
        assert classes(repaired) == classes(first) and repaired["repaired"] == 2

        async def queued() -> bool:
            return (await delta_status(worker, "erp", "price"))["pending"] == 2

        await wait_until(queued, what="repaired keys pending")
        await deliver(worker, sim)
        prices = norce_prices(sim)
        assert (prices["SKU-00001"], prices["SKU-00002"]) == (101.0, 102.0)
        assert len(sim.state.jobs) == 3  # two deltas before, one repair delta: never a full file
        assert not any(job.header.FullFile for job in sim.state.jobs.values())

        second = await reconcile_via_http(worker)
        # What a delta cannot fix stays: the extra rows and the 0 price.
        assert classes(second) == {
            "matching": N - 1, "different": 0, "missing": 0, "absent": 2, "unwritable": 1,
            "pending": 0,
        }  # fmt: skip

        [last], _ = await reconcile_cli(worker, "--last")
        assert last["request_id"] == second["request_id"]
        async with httpx.AsyncClient(timeout=10) as client:
            metrics = (await client.get(f"{worker.url}/metrics")).text
        gauge = 'norce_sync_reconcile_items{{class="{}",kind="price",source="erp"}} {}'
        assert gauge.format("absent", 2.0) in metrics
        assert gauge.format("different", 0.0) in metrics

"""Reconcile of stock and products on the real broker and the simulator: drift written
into the simulator directly (a changed on-hand value, a deleted stock row, extra rows, a
changed owned SKU or product field, an item deleted at the source) is found exactly by
``norce-sync reconcile`` with no arguments (every pair of the example config), and
``--repair`` fixes what a delta can fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from norce_simulator import SimulatorServer
from tests.support.debezium import (
    STOCK_KEY,
    envelope,
    item_row,
    key_bytes,
    product_row,
    stock_row,
)
from tests.support.kafka import produce
from tests.support.reconcile import classes, reconcile_cli
from tests.support.stack import (
    EXAMPLE,
    delta_status,
    start_worker,
    trigger_delta,
    wait_applied,
    wait_until,
    worker_env,
    write_config,
)

N = 20  # ERP items and stock rows
PIM_N = 5  # PIM products (of the ERP's N products)
PAIRS = [("erp", "price"), ("erp", "product"), ("erp", "stock"), ("pim", "product")]


def part(n: int) -> str:
    return f"SKU-{n:05d}"


def with_pim(tmp_path: Path, unique: str) -> tuple[Path, dict[tuple[str, str], str]]:
    """The example config's four pairs on this test's topics."""
    path, topics = write_config(tmp_path, unique, kinds=("price", "stock", "product"))
    data = yaml.safe_load(path.read_text())
    erp = next(i for i in data["inputs"] if i["kind"] == "product")
    pim = next(i for i in yaml.safe_load(EXAMPLE.read_text())["inputs"] if i["source"] == "pim")
    for name in ("delta_schedule", "full_schedule"):
        pim[name] = erp[name]
    pim["topic"] = f"{pim['topic']}.{unique}"
    data["inputs"].append(pim)
    path.write_text(yaml.safe_dump(data))
    return path, {**{("erp", k): t for k, t in topics.items()}, ("pim", "product"): pim["topic"]}


async def deliver(worker: Any) -> None:
    """Deltas of every pair until nothing is pending and no job is open."""

    async def idle() -> bool:
        done = True
        for source, kind in PAIRS:
            status = await delta_status(worker, source, kind)
            if status["pending"] and not status["open_jobs"]:
                await trigger_delta(worker, source, kind)
            done = done and not status["pending"] and not status["open_jobs"]
        return done

    await wait_until(idle, timeout=120, what="every change delivered")


def by_pair(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["source"], r["kind"]): r for r in results}


async def test_stock_and_product_drift_is_found_exactly_and_repaired_by_a_delta(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    sim.state.reset()  # an empty tenant: the products of this test create their SKUs
    config, topics = with_pim(tmp_path, unique)
    env = worker_env(kafka_servers, unique, sim.url, config, tmp_path)
    worker = await start_worker("norce_sync", env, tmp_path / "worker.log")
    try:
        items = [item_row(part(n), f"P-{n:05d}", 1.0 + n) for n in range(N)]
        changes = [(key_bytes(r, ["part_no"]), envelope("items", "c", r)) for r in items]
        # An item deleted at the source: no delta can deactivate a SKU (no IsActive code).
        changes.append((changes[8][0], envelope("items", "d", None, before=items[8])))
        await produce(kafka_servers, topics[("erp", "product")], changes)
        stock = [stock_row(part(n), 10 + n) for n in range(N)]
        await produce(
            kafka_servers,
            topics[("erp", "stock")],
            [(key_bytes(r, STOCK_KEY), envelope("stock", "c", r)) for r in stock],
        )
        pim = [product_row(f"P-{n:05d}", part(n), f"Product {n}") for n in range(PIM_N)]
        await produce(
            kafka_servers,
            topics[("pim", "product")],
            [(key_bytes(r, ["product_code"]), envelope("products", "c", r)) for r in pim],
        )
        await wait_applied([worker], "erp", "product", N + 1)
        await wait_applied([worker], "erp", "stock", N)
        await wait_applied([worker], "pim", "product", PIM_N)
        await deliver(worker)
        assert len(sim.state.list_items("stock")) == N

        async with httpx.AsyncClient(base_url=sim.url, timeout=10) as control:

            async def edit(kind: str, key: str, values: dict[str, Any]) -> None:
                response = await control.patch(
                    f"/_sim/items/{kind}", params={"key": key}, json=values
                )
                assert response.status_code == 200, response.text

            await edit("stock", f"{part(1)}|MAIN|A1", {"OnhandValue": 999})
            deleted = await control.delete(
                "/_sim/items/stock", params={"key": f"{part(2)}|MAIN|A1"}
            )
            assert deleted.status_code == 200
            extra = {
                "sku": [{"PartNo": "EXTRA"}],
                "stock": [
                    # in a warehouse/location the state holds: a full import deactivates it
                    {"PartNo": "EXTRA", "WarehouseCode": "MAIN", "LocationCode": "A1",
                     "OnhandValue": 1},
                    # in one it does not: a full import leaves it alone
                    {"PartNo": part(4), "WarehouseCode": "WEB", "LocationCode": "A1",
                     "OnhandValue": 1},
                ],
            }  # fmt: skip
            assert (await control.post("/_sim/seed", json=extra)).status_code == 200
            await edit("sku", part(5), {"ActualWeight": 9.5})  # owned by the ERP
            await edit("sku", part(6), {"VatRate": 12.0})  # owned by nobody: not drift
            await edit("product", "P-00001", {"ManufacturerName": "Someone else"})  # PIM's

        # No arguments: every pair of the config.
        results, stderr = await reconcile_cli(worker)
        first = by_pair(results)
        assert set(first) == set(PAIRS) and all(r["status"] == "ok" for r in results), results
        assert "erp/stock Norce items" in stderr  # the progress bar

        stock_result = first[("erp", "stock")]
        assert classes(stock_result) == {
            "matching": N - 2, "different": 1, "missing": 1, "absent": 2, "unwritable": 0,
            "pending": 0,
        }  # fmt: skip
        assert (stock_result["state_items"], stock_result["norce_items"]) == (N, N - 1 + 2)
        assert stock_result["different_by_field"] == {"OnhandValue": 1}
        assert stock_result["examples"]["different:OnhandValue"] == [
            {"key": f"{part(1)}|MAIN|A1", "state": 11.0, "norce": 999}
        ]
        assert stock_result["examples"]["missing"] == [{"key": f"{part(2)}|MAIN|A1"}]
        assert stock_result["would_deactivate"] == 1
        assert {
            e["key"]: e["in_full_import_scope"] for e in stock_result["examples"]["absent"]
        } == {
            "EXTRA|MAIN|A1": True,
            f"{part(4)}|WEB|A1": False,
        }

        skus = first[("erp", "product")]
        assert classes(skus) == {
            "matching": N - 2, "different": 1, "missing": 0, "absent": 1, "unwritable": 1,
            "pending": 0,
        }  # fmt: skip
        assert skus["examples"]["unwritable:IsActive (a full import deactivates)"] == [
            {"key": part(8), "state": False, "norce": True}
        ]
        assert skus["examples"]["different:ActualWeight"] == [
            {"key": part(5), "state": 6.0, "norce": 9.5}
        ]
        assert skus["would_deactivate"] == 1  # EXTRA: a full import inactivates SKUs it lacks

        products = first[("pim", "product")]
        assert classes(products) == {
            "matching": PIM_N - 1, "different": 1, "missing": 0, "absent": N - PIM_N,
            "unwritable": 0, "pending": 0,
        }  # fmt: skip
        assert products["different_by_field"] == {"ManufacturerName": 1}
        assert set(products["not_compared"]) == {"Cultures", "SkuCultureFieldsThatAreSet.Comment"}
        assert first[("erp", "price")]["state_items"] == 0

        repaired, _ = await reconcile_cli(worker, "--repair")
        assert {k: r["repaired"] for k, r in by_pair(repaired).items()} == {
            ("erp", "price"): 0, ("erp", "product"): 1, ("erp", "stock"): 2,
            ("pim", "product"): 1,
        }  # fmt: skip
        await deliver(worker)
        assert sim.state.item("stock", f"{part(1)}|MAIN|A1")["OnhandValue"] == 11.0  # type: ignore[index]
        assert sim.state.item("stock", f"{part(2)}|MAIN|A1")["OnhandValue"] == 12.0  # type: ignore[index]
        assert not any(job.header.FullFile for job in sim.state.jobs.values())

        second = by_pair((await reconcile_cli(worker))[0])
        assert classes(second[("erp", "stock")]) == {
            "matching": N, "different": 0, "missing": 0, "absent": 2, "unwritable": 0,
            "pending": 0,
        }  # fmt: skip
        assert classes(second[("erp", "product")]) == {
            "matching": N - 1, "different": 0, "missing": 0, "absent": 1, "unwritable": 1,
            "pending": 0,
        }  # fmt: skip
        assert classes(second[("pim", "product")])["matching"] == PIM_N
        assert second[("pim", "product")]["different"] == 0
    finally:
        worker.stop()

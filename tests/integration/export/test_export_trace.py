"""``GET /items/export/{kind}/{id}`` on the real broker, one worker with two export
targets and the simulator over HTTP: an entity's webhooks, its record per target, and
"unchanged" after an event that changed nothing in Norce."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
import pytest_asyncio

from norce_simulator import SimulatorServer
from tests.integration.export.support import (
    SKU_EVENTS,
    TOKEN,
    TOKEN_HEADER,
    eventually,
    sim_config,
    start_worker,
    stop_worker,
    subscribe,
    worker_env,
)
from tests.support.cli import norce_sync
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

OPS_TOKEN = "trace-ops-token"
AUTH = {"Authorization": f"Bearer {OPS_TOKEN}"}


class Env:
    def __init__(self, sim: SimulatorServer, worker: WorkerProcess, environ: dict[str, str]):
        self.sim = sim
        self.worker = worker
        self.environ = environ


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(kafka_servers: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp = tmp_path_factory.mktemp("export-trace")
    app_id = f"ext-{uuid.uuid4().hex[:10]}"
    async with SimulatorServer(sim_config()) as sim:
        environ = worker_env(
            app_id,
            kafka_servers,
            sim,
            tmp / "data",
            NORCE_SYNC_EXPORT_WINDOW_S="0.5",
            NORCE_SYNC_OPS_TOKEN=OPS_TOKEN,
        )
        worker = await start_worker(environ, tmp / "worker.log")
        try:
            subscribe(sim, worker.url, *SKU_EVENTS)
            yield Env(sim, worker, environ)
        finally:
            assert await stop_worker(worker) == 0, worker.tail()


def seed(sim: SimulatorServer, part_no: str) -> None:
    sim.state.seed(
        {
            "pricelist": [{"PriceListCode": "STD", "Name": "Standard", "CurrencyCode": "SEK"}],
            "sku": [{"PartNo": part_no, "EanCode": f"ean-{part_no}",
                     "Cultures": [{"CultureCode": "sv-SE", "ErpName": f"Name {part_no}"}]}],
            "price": [{"PartNo": part_no, "PriceListCode": "STD", "PriceSale": 10.0}],
            "stock": [{"PartNo": part_no, "WarehouseCode": "W1", "OnhandValue": 5}],
        }
    )  # fmt: skip


async def post(http: httpx.AsyncClient, env: Env, event_type: str, part_no: str) -> None:
    answer = await http.post(
        f"{env.worker.url}/norce/events/{event_type}",
        content=orjson.dumps({"ClientId": 1, "ApplicationId": 2, "PartNo": part_no}),
        headers={TOKEN_HEADER: TOKEN},
    )
    assert answer.status_code == 200, answer.text


async def trace(http: httpx.AsyncClient, env: Env, kind: str, entity_id: str) -> httpx.Response:
    url = f"{env.worker.url}/items/export/{kind}/{quote(entity_id, safe='')}"
    return await http.get(url, headers=AUTH)


async def test_the_export_view_shows_events_records_per_target_and_unchanged(env: Env) -> None:
    seed(env.sim, "TR-1")
    async with httpx.AsyncClient(timeout=60) as http:
        assert (await http.get(f"{env.worker.url}/items/export/sku/TR-1")).status_code == 401
        await post(http, env, "SkuChangedNotification", "TR-1")
        first: dict[str, Any] = {}

        async def produced() -> bool:
            answer = await trace(http, env, "sku", "TR-1")
            assert answer.status_code == 200, answer.text
            first.update(answer.json())
            return all(t["last_record"] is not None for t in first["targets"])

        await eventually(produced, timeout=60, what="a record per target in the view")
        assert first["key"] == "sku:TR-1"
        [event] = first["events"]
        assert event["event_type"] == "SkuChangedNotification"
        assert event["body"]["PartNo"] == "TR-1"
        by_target = {t["target"]: t for t in first["targets"]}
        assert set(by_target) == {"search", "marketplace"}
        for target in by_target.values():
            record = target["last_record"]
            assert target["topic"].endswith(f"out.{target['target']}.sku")
            assert record["deleted"] is False
            assert record["event_types"] == "SkuChangedNotification"
            assert target["stored_digest"] == record["digest"]
            assert target["unchanged"] is True  # Norce holds what was produced
        assert first["verdict"] == "the newest event produced a record for every target"

        # The same SKU again, nothing changed in Norce: looked up, nothing produced.
        await post(http, env, "SkuPriceChangedNotification", "TR-1")
        second: dict[str, Any] = {}

        async def looked_up() -> bool:
            stats = (await http.get(f"{env.worker.url}/export/stats", headers=AUTH)).json()
            second.update((await trace(http, env, "sku", "TR-1")).json())
            return len(second["events"]) == 2 and stats["unchanged"] >= 2 and stats["waiting"] == 0

        await eventually(looked_up, timeout=60, what="the second event looked up")
        newest, oldest = second["events"]
        assert newest["event_type"] == "SkuPriceChangedNotification"
        assert newest["offset"] > oldest["offset"]
        for target in second["targets"]:
            before = {t["target"]: t for t in first["targets"]}[target["target"]]
            assert target["last_record"]["offset"] == before["last_record"]["offset"]
            assert target["unchanged"] is True
        assert second["verdict"].startswith("unchanged:"), second["verdict"]
        cli = await asyncio.to_thread(
            norce_sync, "item", "--export", "--kind", "sku", "--worker", env.worker.url, "TR-1",
            env=env.environ,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert "entity         sku:TR-1  (partition " in cli.stdout
        assert "SkuPriceChangedNotification" in cli.stdout
        assert "search: " in cli.stdout and "a lookup now: unchanged" in cli.stdout
        assert "verdict        unchanged: " in cli.stdout

        # Norce changes and no event came yet: the view says a lookup now differs.
        culture = {"CultureCode": "sv-SE", "ErpName": "Name TR-1"}
        env.sim.state.seed({"sku": [{"PartNo": "TR-1", "EanCode": "new", "Cultures": [culture]}]})
        third = (await trace(http, env, "sku", "TR-1")).json()
        assert any(t["unchanged"] is False for t in third["targets"]), third["targets"]


async def test_a_sku_gone_from_norce_shows_its_deletion_records(env: Env) -> None:
    part_no = "GONE/1 %2F?#"  # never in Norce, and a hostile id in a URL
    async with httpx.AsyncClient(timeout=60) as http:
        await post(http, env, "SkuChangedNotification", part_no)
        body: dict[str, Any] = {}

        async def produced() -> bool:
            answer = await trace(http, env, "sku", part_no)
            assert answer.status_code == 200, answer.text
            body.update(answer.json())
            return all(t["last_record"] is not None for t in body["targets"])

        await eventually(produced, timeout=60, what="the deletion records in the view")
        assert body["id"] == part_no and body["events"][0]["body"]["PartNo"] == part_no
        for target in body["targets"]:
            assert target["last_record"]["deleted"] is True
            assert target["last_record"]["value"] is None
            assert target["unchanged"] is True  # still gone


async def test_an_unknown_entity_and_a_non_export_kind_are_answered_clearly(env: Env) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        nothing = await trace(http, env, "sku", "NEVER-SEEN")
        assert nothing.status_code == 200
        body = nothing.json()
        assert body["events"] == [] and body["verdict"] == "no event received for this entity"
        assert all(t["last_record"] is None for t in body["targets"])
        price = await trace(http, env, "price", "TR-1")
        assert price.status_code == 404
        assert "ask for kind sku" in price.json()["error"]

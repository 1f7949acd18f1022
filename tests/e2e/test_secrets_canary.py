"""A canary secret in every secret setting never shows up in a log line or a web view,
while a worker runs the import path (change data -> delta -> Connect job) and the export
path (Norce webhooks -> Query -> target topics) at debug level with JSON logs."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from norce_simulator import SimulatorConfig, SimulatorServer
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce, read_all
from tests.support.stack import start_worker, trigger_delta, wait_until, write_export_config

pytestmark = pytest.mark.e2e

CANARY = f"canary{uuid.uuid4().hex[:12]}"
SECRETS = {
    "NORCE_SYNC_NORCE_CLIENT_SECRET": f"{CANARY}-norce",
    "NORCE_SYNC_WEBHOOK_TOKEN": f"{CANARY}-hook",
    "NORCE_SYNC_OPS_TOKEN": f"{CANARY}-ops",
    "NORCE_SYNC_ERP_CLIENT_SECRET": f"{CANARY}-erp",
    "NORCE_SYNC_PIM_CLIENT_SECRET": f"{CANARY}-pim",
}
AUTH = {"Authorization": f"Bearer {SECRETS['NORCE_SYNC_OPS_TOKEN']}"}
PART_NOS = ["SKU-C1", "SKU-C2", "SKU-C3"]
SKU_EVENTS = ("SkuChangedNotification", "SkuPriceChangedNotification")


def seed(sim: SimulatorServer) -> None:
    sim.state.seed(
        {
            "pricelist": [{"PriceListCode": "STD", "Name": "Standard", "CurrencyCode": "SEK"}],
            "sku": [{"PartNo": p, "EanCode": f"ean-{p}"} for p in PART_NOS],
            "price": [{"PartNo": p, "PriceListCode": "STD", "PriceSale": 1.0} for p in PART_NOS],
            "stock": [{"PartNo": p, "WarehouseCode": "W1", "OnhandValue": 5} for p in PART_NOS],
        }
    )


async def test_no_secret_in_logs_or_views(kafka_servers: str, unique: str, tmp_path: Path) -> None:
    app_id = f"canary-{unique}"
    sim_cfg = SimulatorConfig(
        port=0,
        lead_time_s=0.2,
        token_rate_limit=False,
        webhook_time_factor=0.01,
        client_secret=SECRETS["NORCE_SYNC_NORCE_CLIENT_SECRET"],
        extra_clients={
            "norce-sync-erp": SECRETS["NORCE_SYNC_ERP_CLIENT_SECRET"],
            "norce-sync-pim": SECRETS["NORCE_SYNC_PIM_CLIENT_SECRET"],
        },
    )
    async with SimulatorServer(sim_cfg) as sim:
        seed(sim)
        config, topic = write_export_config(tmp_path, unique)
        env = {
            "NORCE_SYNC_APP_ID": app_id,
            "NORCE_SYNC_BROKER": f"kafka://{kafka_servers}",
            "NORCE_SYNC_STORE": "memory://",
            "NORCE_SYNC_DATA_DIR": str(tmp_path / "data"),
            "NORCE_SYNC_NORCE_BASE_URL": sim.url,
            "NORCE_SYNC_CONFIG_FILE": str(config),
            "NORCE_SYNC_TOPIC_PARTITIONS": "2",
            "NORCE_SYNC_DLQ_TOPIC": f"{app_id}-dlq",
            "NORCE_SYNC_EXPORT_TOPIC_PREFIX": f"{app_id}.",
            "NORCE_SYNC_JOB_POLL_MIN_S": "0.3",
            "NORCE_SYNC_JOB_POLL_TICK_S": "0.3",
            "NORCE_SYNC_OPS_BACKLOG_INTERVAL_S": "1",  # /pending/ is waited for below
            "NORCE_SYNC_LOG_LEVEL": "debug",
            "NORCE_SYNC_LOG_FORMAT": "json",
            **SECRETS,
        }
        log_path = tmp_path / "worker.log"
        worker = await start_worker("norce_sync", env, log_path)
        views: dict[str, str] = {}
        try:
            sim.state.set_subscriptions(
                {
                    t: {
                        "url": f"{worker.url}/norce/events/{t}",
                        "headers": {"x-norce-webhook-token": SECRETS["NORCE_SYNC_WEBHOOK_TOKEN"]},
                    }
                    for t in SKU_EVENTS
                }
            )
            # Import path: three price changes and a broken message, then a delta.
            rows = [price_row(p, 20.0 + n) for n, p in enumerate(PART_NOS)]
            changes = [(key_bytes(r, PRICE_KEY), envelope("prices", "u", r)) for r in rows]
            await produce(kafka_servers, topic, changes)
            await produce(kafka_servers, topic, [(b"broken", b"{not json")], raw=True)
            async with httpx.AsyncClient(timeout=60, headers=AUTH) as http:

                async def pending() -> bool:
                    data = (await http.get(f"{worker.url}/pending/")).json()
                    return bool(data["total_keys"] == len(PART_NOS))

                await wait_until(pending, what="changes pending")
                posted = await trigger_delta(worker, "erp", "price", headers=AUTH)
                assert posted["batches"], posted

                async def succeeded() -> bool:
                    data = (await http.get(f"{worker.url}/jobs/?status=succeeded")).json()
                    return bool(data["total"] == 1)

                await wait_until(succeeded, what="import job succeeded")

                # Export path: the job's price changes come back as Norce webhooks.
                async def exported() -> bool:
                    records = await read_all(kafka_servers, f"{app_id}.out.search.sku")
                    return {r.key for r in records} >= {p.encode() for p in PART_NOS}

                await wait_until(exported, timeout=60, what="target records")
                refused = await http.post(
                    f"{worker.url}/norce/events/SkuChangedNotification",
                    content=b"{}",
                    headers={"x-norce-webhook-token": f"{CANARY}-wrong"},
                )
                assert refused.status_code == 401

                job = (await http.get(f"{worker.url}/jobs/")).json()["jobs"][0]
                for path in (
                    "/",
                    "/jobs/",
                    f"/jobs/{job['batch_id']}",
                    f"/jobs/{job['job_id']}",
                    "/pending/",
                    "/dlq/",
                    "/metrics",
                    "/health",
                    "/ready",
                    "/router/",
                    "/delta/erp/price",
                ):
                    response = await http.get(worker.url + path)
                    assert response.status_code == 200, (path, response.text)
                    views[path] = response.text
            assert (orjson.loads(views["/dlq/"]))["total"] == 1
        finally:
            assert worker.stop() == 0, worker.tail()

    for path, body in views.items():
        assert CANARY not in body, f"a secret in {path}"
    text = log_path.read_text(errors="replace")
    assert CANARY not in text, [line for line in text.splitlines() if CANARY in line][:3]
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert {line["level"] for line in lines} >= {"debug", "info"}
    assert any("access token" in line["msg"] for line in lines), "no Norce token was fetched"
    assert any(line["logger"].startswith("httpcore") for line in lines)  # HTTP at debug

"""The order flow's moving parts for tests: a sync config with order targets, a worker's
environment with receiver credentials, and reads of the order topics."""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tests.support.kafka import read_all
from tests.support.stack import write_config

ORDERS_USER = "norce"
ORDERS_PASSWORD = "order-test-password"
ORDER_TARGETS = ("erp", "wms")


def basic(user: str = ORDERS_USER, password: str = ORDERS_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def write_orders_config(
    tmp_path: Path, unique: str, *, event_targets: tuple[str, ...] = ("erp",)
) -> Path:
    """The example config with one ERP input of this test and no export targets, plus an
    ``orders:`` section with two order targets and an ``order_status`` input."""
    path, _ = write_config(tmp_path, unique)
    data = yaml.safe_load(path.read_text())
    data["orders"] = {
        "targets": {
            "erp": {
                "mapping": {
                    "order_no": "ClientOrderRef",
                    "currency": {"from": "CurrencyCode", "default": None},
                    "lines": {"from": "Items", "default": []},
                }
            },
            "wms": {"mapping": {"ref": "ClientOrderRef", "items": "Items"}},
        },
        "event_targets": list(event_targets),
    }
    data["inputs"].append(  # ERP statuses back to Norce: an input of kind order_status
        {
            "topic": status_topic(unique),
            "source": "erp",
            "kind": "order_status",
            "format": "plain",
            "mapping": {"ClientOrderRef": "web_order_no", "OrderStatus": "status"},
        }
    )
    path = tmp_path / "orders.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def status_topic(unique: str) -> str:
    return f"erp.public.order_status.{unique}"


def orders_env(app_id: str, servers: str, sim_url: str, config: Path, data: Path) -> dict[str, Any]:
    return {
        "NORCE_SYNC_APP_ID": app_id,
        "NORCE_SYNC_BROKER": f"kafka://{servers}",
        "NORCE_SYNC_NORCE_BASE_URL": sim_url,
        "NORCE_SYNC_STORE": "memory://",
        "NORCE_SYNC_DATA_DIR": str(data),
        "NORCE_SYNC_CONFIG_FILE": str(config),
        "NORCE_SYNC_TOPIC_PARTITIONS": "4",
        "NORCE_SYNC_DLQ_TOPIC": f"{app_id}-dlq",
        "NORCE_SYNC_EXPORT_TOPIC_PREFIX": f"{app_id}.",
        "NORCE_SYNC_WEBHOOK_TOKEN": "order-test-webhook-token",
        "NORCE_SYNC_NORCE_CLIENT_SECRET": "demo-secret",
        "NORCE_SYNC_ORDERS_USER": ORDERS_USER,
        "NORCE_SYNC_ORDERS_PASSWORD": ORDERS_PASSWORD,
        "NORCE_SYNC_ERP_CLIENT_SECRET": "erp-demo-secret",
        "NORCE_SYNC_PIM_CLIENT_SECRET": "pim-secret",
    }


async def refs_on(servers: str, topic: str) -> Counter[str]:
    """How many records each key has on ``topic``."""
    return Counter(r.key.decode() for r in await read_all(servers, topic) if r.key is not None)

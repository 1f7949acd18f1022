"""Helpers of the export tests: a worker wired to an in-process simulator, topic reads."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from aiokafka import ConsumerRecord

from agents.config.sync_config import load_config
from agents.export.enricher import Enricher
from agents.export.reader import EventsReader
from agents.export.targets import target_specs
from norce.client import NorceClient
from norce.config import NorceCredentials, NorceEndpoints
from norce_simulator import SimulatorConfig, SimulatorServer
from streams.app import create_app
from streams.kafka import TopicSpec, declare_and_confirm
from streams.settings import Settings
from streams.topics import norce_events_topic
from tests.support.kafka import read_all
from tests.support.worker import WorkerProcess

TOKEN = "export-test-token"
TOKEN_HEADER = "x-norce-webhook-token"
SKU_EVENTS = (
    "SkuChangedNotification",
    "SkuPriceChangedNotification",
    "SkuOnHandBreakPointNotification",
)
TARGET_TOPICS = ("out.search.sku", "out.marketplace.sku")


def sim_config(**overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {
        "port": 0,
        "workers": 2,
        "lead_time_s": 0.05,
        "token_rate_limit": False,
        "webhook_time_factor": 0.01,
        # the worker's default credentials
        "client_id": "norce-sync-demo",
        "client_secret": "demo-secret",
        "application_id": "demo-app",
    }
    values.update(overrides)
    return SimulatorConfig(**values)


def worker_env(
    app_id: str, servers: str, sim: SimulatorServer, data_dir: Path, **extra: str
) -> dict[str, str]:
    return {
        "NORCE_SYNC_APP_ID": app_id,
        "NORCE_SYNC_BROKER": f"kafka://{servers}",
        "NORCE_SYNC_NORCE_BASE_URL": sim.url,
        "NORCE_SYNC_STORE": "memory://",
        "NORCE_SYNC_DATA_DIR": str(data_dir),
        "NORCE_SYNC_TOPIC_PARTITIONS": "2",
        "NORCE_SYNC_DLQ_TOPIC": f"{app_id}-dlq",
        "NORCE_SYNC_WEBHOOK_TOKEN": TOKEN,
        "NORCE_SYNC_NORCE_CLIENT_SECRET": "demo-secret",  # the simulator's (sim_config)
        "NORCE_SYNC_EXPORT_TOPIC_PREFIX": f"{app_id}.",
        "NORCE_SYNC_EXPORT_QUERY_BASE_DELAY_S": "0.1",
        # the example config's import sources read their secrets from the environment
        "NORCE_SYNC_ERP_CLIENT_SECRET": "erp-secret",
        "NORCE_SYNC_PIM_CLIENT_SECRET": "pim-secret",
        **extra,
    }


async def start_worker(env: dict[str, str], log: Path) -> WorkerProcess:
    # In a thread: the simulator on this loop must keep answering while we wait.
    return await asyncio.to_thread(WorkerProcess("norce_sync", env, log).start)


async def stop_worker(worker: WorkerProcess) -> int:
    return await asyncio.to_thread(worker.stop)


def subscribe(sim: SimulatorServer, worker_url: str, *event_types: str) -> None:
    sim.state.set_subscriptions(
        {
            t: {"url": f"{worker_url}/norce/events/{t}", "headers": {TOKEN_HEADER: TOKEN}}
            for t in event_types
        }
    )


def norce_client(sim: SimulatorServer) -> NorceClient:
    credentials = NorceCredentials(
        client_id="norce-sync-demo", client_secret="demo-secret", application_id="demo-app"
    )
    return NorceClient(credentials, NorceEndpoints(base_url=sim.url))


def query_calls(sim: SimulatorServer, entity_set: str = "Products/ProductSkus") -> int:
    return sim.state.calls[f"query:{entity_set}"]


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float, what: str, every: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


async def records_by_key(servers: str, topic: str) -> dict[bytes, list[ConsumerRecord]]:
    by_key: dict[bytes, list[ConsumerRecord]] = defaultdict(list)
    for record in await read_all(servers, topic, timeout=30):
        by_key[record.key].append(record)
    return dict(by_key)


async def webhooks_settled(sim: SimulatorServer, timeout: float = 60.0) -> None:
    async def settled() -> bool:
        return not any(r.state == "pending" for r in sim.state.deliveries)

    await eventually(settled, timeout=timeout, what="webhook deliveries to settle", every=0.2)


@dataclass(frozen=True)
class EnricherRig:
    """The enricher and its reader on their own (the app is only their producer)."""

    app: faust.App
    enricher: Enricher
    reader: EventsReader
    events_topic: str
    targets: list[str]  # the SKU events' target topics, sorted


@asynccontextmanager
async def enricher_rig(settings: Settings, unique: str) -> AsyncIterator[EnricherRig]:
    """Declares the flow's topics (2 partitions each), starts the reader and the app's
    producer, and stops them when the block ends."""
    specs = target_specs(load_config(str(settings.config_file)), settings.export_topic_prefix)
    targets = sorted(spec.topic for spec in specs["sku"])
    events_topic, digests_topic = norce_events_topic(settings), f"{unique}-digests"
    await declare_and_confirm(
        settings,
        [
            TopicSpec(events_topic, 2),
            TopicSpec(digests_topic, 2, compacted=True),
            TopicSpec(settings.dlq_topic, 1),
            *(TopicSpec(s.topic, 2, compacted=True) for kind in specs.values() for s in kind),
        ],
    )
    app = create_app(settings)
    enricher = Enricher(settings, app, specs, digests_topic)
    reader = EventsReader(
        settings, events_topic, digests_topic, enricher.coalescer.add, enricher.coalescer.drain
    )
    enricher.reader = reader
    await app.maybe_start_producer()
    await reader.start()
    try:
        yield EnricherRig(app, enricher, reader, events_topic, targets)
    finally:
        await reader.stop()
        await enricher.coalescer.close()
        await app.producer.stop()

"""A worker with webhook intake processes (``NORCE_SYNC_INTAKE_PROCESSES=2``), over real
HTTP, on the real broker and the simulator.

- Webhooks posted to ``intake_port`` reach the export targets, an order event its
  order-events topic; the worker's ``/metrics`` counts what the processes answered.
- One intake process SIGKILLed while webhooks pour in: the worker starts another, and
  every webhook answered 200 (before or after the kill) is on the events topic.
- The worker SIGKILLed: its intake processes stop too (none keeps the port).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import pytest_asyncio
import yaml
from prometheus_client.parser import text_string_to_metric_families

from norce_simulator import SimulatorServer
from tests.integration.export.support import (
    TOKEN,
    TOKEN_HEADER,
    eventually,
    sim_config,
    start_worker,
    stop_worker,
    worker_env,
)
from tests.support.broker import free_port
from tests.support.kafka import read_all
from tests.support.stack import EXAMPLE, seed_skus
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PROCESSES = 2
PRICE_EVENT = "SkuPriceChangedNotification"


@dataclass
class Env:
    servers: str
    sim: SimulatorServer
    worker: WorkerProcess
    app_id: str
    intake_url: str

    @property
    def events_topic(self) -> str:
        return f"{self.app_id}-norce-events"


def write_config(tmp: Path) -> Path:
    """The example config (its export targets) with an order event target."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["orders"] = {
        "targets": {"erp": {"mapping": {"order_no": "ClientOrderRef"}}},
        "event_targets": ["erp"],
    }
    path = tmp / "sync.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp / "example_hooks.py").write_bytes((EXAMPLE.parent / "example_hooks.py").read_bytes())
    return path


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def start(servers: str, sim: SimulatorServer, tmp: Path) -> Env:
    app_id = f"intake-{uuid.uuid4().hex[:8]}"
    port = free_port()
    environ = worker_env(
        app_id,
        servers,
        sim,
        tmp / "data",
        NORCE_SYNC_CONFIG_FILE=str(write_config(tmp)),
        NORCE_SYNC_ORDERS_RECEIVER_ENABLED="false",
        NORCE_SYNC_EXPORT_WINDOW_S="0.2",
        NORCE_SYNC_INTAKE_PROCESSES=str(PROCESSES),
        NORCE_SYNC_INTAKE_PORT=str(port),
    )
    # /ready waits for an intake process to listen as well
    worker = await start_worker(environ, tmp / "worker.log")
    return Env(servers, sim, worker, app_id, f"http://127.0.0.1:{port}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(kafka_servers: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async with SimulatorServer(sim_config()) as sim:
        running = await start(kafka_servers, sim, tmp_path_factory.mktemp("intake"))
        try:
            yield running
        finally:
            pids = running.worker.children()
            assert await stop_worker(running.worker) == 0, running.worker.tail()
            assert not [p for p in pids if alive(p)], "intake processes outlived the worker"


async def post(http: httpx.AsyncClient, url: str, event_type: str, body: dict[str, object]) -> int:
    answer = await http.post(
        f"{url}/norce/events/{event_type}",
        content=orjson.dumps(body),
        headers={TOKEN_HEADER: TOKEN, "content-type": "application/json"},
    )
    return answer.status_code


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value in Prometheus' text format (labels in any order), 0 when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def test_webhooks_on_the_intake_port_reach_the_targets_and_are_counted_by_the_worker(
    env: Env,
) -> None:
    part_nos = [f"IP-{i}" for i in range(20)]
    seed_skus(env.sim, part_nos)
    order_ref = f"IPO-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=10) as http:
        answers = [
            await post(http, env.intake_url, PRICE_EVENT, {"ClientId": 1, "PartNo": p})
            for p in part_nos
        ]
        assert answers == [200] * len(part_nos)
        order = {"ClientId": 1, "ApplicationId": 2, "ClientOrderRef": order_ref}
        assert await post(http, env.intake_url, "OrderConfirmedEvent", order) == 200
        wrong = await http.post(
            f"{env.intake_url}/norce/events/{PRICE_EVENT}",
            content=b'{"ClientId":1,"PartNo":"IP-0"}',
            headers={TOKEN_HEADER: "not-the-token"},
        )
        assert wrong.status_code == 401

        target = f"{env.app_id}.out.search.sku"

        async def exported() -> bool:
            keys = {r.key for r in await read_all(env.servers, target)}
            return all(p.encode() in keys for p in part_nos)

        await eventually(exported, timeout=60, what="every SKU on the search target")
        order_events = await read_all(env.servers, f"{env.app_id}.out.erp.order-events")
        assert [r.key for r in order_events] == [order_ref.encode()]

        async def counted() -> bool:
            text = (await http.get(f"{env.worker.url}/metrics")).text
            ok = metric(text, "norce_sync_webhooks_total", event_type=PRICE_EVENT, code="200")
            refused = metric(text, "norce_sync_webhooks_total", event_type=PRICE_EVENT, code="401")
            listening = metric(text, "norce_sync_intake_processes")
            return ok >= len(part_nos) and refused >= 1 and listening == PROCESSES

        await eventually(counted, timeout=15, what="the intake processes' counts on /metrics")


async def test_a_killed_intake_process_is_replaced_and_no_accepted_webhook_is_lost(
    env: Env,
) -> None:
    accepted: list[str] = []
    refused = 0
    stop = asyncio.Event()
    prefix = f"K{uuid.uuid4().hex[:4]}"

    async def poster(n: int) -> None:
        nonlocal refused
        # a client per poster: the kernel spreads their connections over both processes
        async with httpx.AsyncClient(timeout=10) as http:
            i = 0
            while not stop.is_set():
                part_no = f"{prefix}-{n}-{i}"
                i += 1
                try:
                    code = await post(
                        http, env.intake_url, PRICE_EVENT, {"ClientId": 1, "PartNo": part_no}
                    )
                except httpx.HTTPError:
                    code = 0  # the killed process's connection: Norce would retry
                if code == 200:
                    accepted.append(part_no)
                else:
                    refused += 1
                    await asyncio.sleep(0.01)

    before = env.worker.children()
    assert len(before) == PROCESSES
    posters = [asyncio.create_task(poster(n)) for n in range(8)]
    try:

        async def accepted_at_least(count: int) -> bool:
            return len(accepted) >= count

        await eventually(lambda: accepted_at_least(300), timeout=30, what="300 accepted")
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        killed_at = len(accepted)

        async def replaced() -> bool:
            now = env.worker.children()
            return len(now) == PROCESSES and victim not in now

        await eventually(replaced, timeout=30, what="a new intake process")
        await eventually(
            lambda: accepted_at_least(killed_at + 300),
            timeout=30,
            what="300 more accepted after the kill",
        )
    finally:
        stop.set()
        await asyncio.gather(*posters)

    on_topic = {r.key for r in await read_all(env.servers, env.events_topic, timeout=30)}
    missing = [p for p in accepted if f"sku:{p}".encode() not in on_topic]
    assert missing == [], f"{len(missing)} of {len(accepted)} accepted webhooks not stored"
    log = env.worker.log_path.read_text()
    assert any(f"intake process {slot} exited with code -9" in log for slot in range(PROCESSES))


async def test_the_intake_processes_stop_when_the_worker_is_killed(
    kafka_servers: str, tmp_path: Path
) -> None:
    async with SimulatorServer(sim_config()) as sim:
        running = await start(kafka_servers, sim, tmp_path)
        pids = running.worker.children()
        assert len(pids) == PROCESSES
        running.worker.kill()
        deadline = time.monotonic() + 15
        while [p for p in pids if alive(p)] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert [p for p in pids if alive(p)] == [], "intake processes outlived a killed worker"

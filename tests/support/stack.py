"""The import path's moving parts for tests: a sync config with this test's own topic
names, a worker's environment, and calls to its views."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from agents.imports.jobs import JobRecord, apply_job_event
from streams.messages import JobCompleted, job_events_message
from tests.support.broker import ROOT
from tests.support.kafka import read_all
from tests.support.worker import WorkerProcess

EXAMPLE = ROOT / "config" / "example.yaml"
NEVER = "0 0 1 1 *"  # a cron that fires once a year: tests trigger deltas themselves

# The worker has no default secrets: these are the simulator's defaults.
# The worker's command line with the faults a test's environment asks for (SIGKILL at a
# named step: tests/support/faulty_worker.py); the worker itself never imports it.
FAULTY = "tests.support.faulty_worker"

SECRETS = {
    "NORCE_SYNC_ERP_CLIENT_SECRET": "erp-demo-secret",
    "NORCE_SYNC_PIM_CLIENT_SECRET": "pim-demo-secret",
    "NORCE_SYNC_NORCE_CLIENT_SECRET": "demo-secret",
    "NORCE_SYNC_WEBHOOK_TOKEN": "demo-webhook-token",
}


def write_config(
    tmp_path: Path,
    unique: str,
    *,
    kinds: tuple[str, ...] = ("price",),
    max_items_per_job: int = 10_000,
    delta_schedule: str = NEVER,
    full_schedule: str = NEVER,
    binding_changes: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, str]]:
    """The example config with only the ERP inputs of ``kinds``, on topics of this test
    (``binding_changes`` set on each; None values drop a setting). Returns the file and a
    map kind -> input topic."""
    data = yaml.safe_load(EXAMPLE.read_text())
    inputs = [i for i in data["inputs"] if i["source"] == "erp" and i["kind"] in kinds]
    topics = {}
    for binding in inputs:
        binding["topic"] = f"{binding['topic']}.{unique}"
        binding["max_items_per_job"] = max_items_per_job
        binding["delta_schedule"] = delta_schedule
        binding["full_schedule"] = full_schedule
        for name, value in (binding_changes or {}).items():
            if value is None:
                binding.pop(name, None)
            else:
                binding[name] = value
        topics[binding["kind"]] = binding["topic"]
    data["inputs"] = inputs
    data["targets"] = {}
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, topics


def worker_env(
    kafka_servers: str, unique: str, sim_url: str, config: Path, tmp_path: Path, **extra: str
) -> dict[str, str]:
    return {
        "NORCE_SYNC_APP_ID": f"imp-{unique}",
        "NORCE_SYNC_BROKER": f"kafka://{kafka_servers}",
        "NORCE_SYNC_STORE": "memory://",
        "NORCE_SYNC_DATA_DIR": str(tmp_path / "data"),
        "NORCE_SYNC_NORCE_BASE_URL": sim_url,
        "NORCE_SYNC_CONFIG_FILE": str(config),
        "NORCE_SYNC_TOPIC_PARTITIONS": "4",
        "NORCE_SYNC_DLQ_TOPIC": f"dlq-{unique}",
        "NORCE_SYNC_JOB_POLL_MIN_S": "0.3",
        "NORCE_SYNC_JOB_POLL_MAX_S": "1",
        "NORCE_SYNC_JOB_POLL_TICK_S": "0.3",
        # /pending/ follows each worker's backlog report: every 1 s, not the default 5 s,
        # so a test waiting for it is not held up (tests of the view itself set 0.5 s).
        "NORCE_SYNC_OPS_BACKLOG_INTERVAL_S": "1",
        **SECRETS,
        **extra,
    }


async def start_worker(module: str, env: dict[str, str], log: Path) -> WorkerProcess:
    worker = WorkerProcess(module, env, log)
    return await asyncio.to_thread(worker.start)


async def start_workers(module: str, *specs: tuple[dict[str, str], Path]) -> list[WorkerProcess]:
    """Workers of one group started side by side (``specs``: (env, log) each): they join
    the group together, one rebalance instead of one per worker. If one fails to start,
    the others are stopped before the error is raised (no worker outlives its test)."""
    workers = [WorkerProcess(module, env, log) for env, log in specs]
    results = await asyncio.gather(
        *(asyncio.to_thread(w.start) for w in workers), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        for worker in workers:
            if worker.proc is not None:
                worker.kill()
        raise errors[0]
    return workers


async def stop_workers(*workers: WorkerProcess) -> list[int]:
    """Stop (SIGTERM, wait) several workers side by side: none sits through a rebalance
    caused by another one leaving. Returns their exit codes; raises the first failure
    once all have been stopped."""
    results = await asyncio.gather(
        *(asyncio.to_thread(w.stop) for w in workers), return_exceptions=True
    )
    codes: list[int] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        codes.append(result)
    return codes


async def delta_status(
    worker: WorkerProcess, source: str, kind: str, *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{worker.url}/delta/{source}/{kind}", headers=headers)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


async def trigger_delta(
    worker: WorkerProcess,
    source: str,
    kind: str,
    *,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the pair's delta on ``worker`` now, retrying while the worker answers 409 (a job
    of the pair is open) or 503 (its jobs ledger is loading)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=120) as client:
        while True:
            response = await client.post(f"{worker.url}/delta/{source}/{kind}", headers=headers)
            if response.status_code not in (409, 503) or time.monotonic() > deadline:
                response.raise_for_status()
                return response.json()  # type: ignore[no-any-return]
            await asyncio.sleep(0.3)


async def wait_until(predicate: Any, *, timeout: float = 60.0, what: str = "condition") -> Any:
    """Await ``predicate()`` (sync or async) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout}s")
        await asyncio.sleep(0.3)


async def wait_applied(
    workers: list[WorkerProcess], source: str, kind: str, count: int, *, timeout: float = 120
) -> None:
    async def applied() -> bool:
        total = 0
        for w in workers:
            total += (await delta_status(w, source, kind))["applied"]
        return total >= count

    await wait_until(applied, timeout=timeout, what=f"{count} changes applied")


async def ledger(kafka_servers: str, app_id: str) -> dict[str, JobRecord]:
    """The jobs ledger as the tracker folds it, read straight from the job events topic."""
    records: dict[str, JobRecord] = {}
    for message in await read_all(kafka_servers, f"{app_id}-job-events"):
        event = job_events_message(message.value)
        if isinstance(event, JobCompleted):
            continue
        updated = apply_job_event(records.get(event.batch_id), event)
        if updated is not None:
            records[event.batch_id] = updated
    return records


@asynccontextmanager
async def import_worker(
    kafka_servers: str,
    unique: str,
    tmp_path: Path,
    sim_url: str,
    *,
    max_items_per_job: int = 10_000,
    binding_changes: dict[str, Any] | None = None,
    env_extra: dict[str, str] | None = None,
) -> AsyncIterator[tuple[WorkerProcess, dict[str, str], dict[str, str]]]:
    """A worker on this test's ERP price topic: yields (worker, env, kind -> topic)."""
    config, topics = write_config(
        tmp_path, unique, max_items_per_job=max_items_per_job, binding_changes=binding_changes
    )
    env = worker_env(kafka_servers, unique, sim_url, config, tmp_path, **(env_extra or {}))
    worker = await start_worker("norce_sync", env, tmp_path / "worker.log")
    try:
        yield worker, env, topics
    finally:
        worker.stop()


def norce_prices(sim: Any) -> dict[str, float]:
    return {r["PartNo"]: r["PriceSale"] for r in sim.state.list_items("price")}


async def deliver(
    worker: WorkerProcess,
    sim: Any,
    expected: dict[str, float] | None = None,
    *,
    timeout: float = 120,
) -> None:
    """Run deltas (whenever no job of the pair is open) until nothing is pending, no job is
    open (the tracker saw Norce finish them), and (when given) Norce's prices are
    ``expected``."""

    async def delivered() -> bool:
        status = await delta_status(worker, "erp", "price")
        if status["pending"] and not status["open_jobs"]:
            await trigger_delta(worker, "erp", "price")
        idle = not status["pending"] and not status["open_jobs"]
        return idle and (expected is None or norce_prices(sim) == expected)

    await wait_until(delivered, timeout=timeout, what="every change delivered")


def write_export_config(tmp_path: Path, unique: str) -> tuple[Path, str]:
    """The example config with its export targets (their hooks copied beside it) and only
    the ERP price input, on a topic of this test. Returns the file and that topic."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["inputs"] = [i for i in data["inputs"] if i["source"] == "erp" and i["kind"] == "price"]
    topic = f"erp.public.prices.{unique}"
    data["inputs"][0].update(topic=topic, delta_schedule=NEVER, full_schedule=NEVER)
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(data))
    # The example's export hooks are a file beside the config, named relative to it.
    shutil.copy(EXAMPLE.parent / "example_hooks.py", tmp_path / "example_hooks.py")
    return path, topic


def seed_skus(sim: Any, part_nos: Any) -> None:
    """Create SKUs in the simulator directly (the tenant's catalogue): Norce ignores prices
    and stock of SKUs it does not have, and the service holds such rows back."""
    sim.state.seed({"sku": [{"PartNo": p} for p in part_nos]})

"""The ops views on two workers of one group, the bearer-token guard, and the commands
that read Kafka with no worker running."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from norce_simulator import SimulatorConfig, SimulatorServer
from tests.support.broker import ROOT
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce, read_all
from tests.support.stack import start_workers, wait_until, worker_env, write_config
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

TOKEN = "ops-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEYS = 40


async def get(worker: WorkerProcess, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(worker.url + path, **kwargs)


async def view(worker: WorkerProcess, path: str) -> Any:
    response = await get(worker, path, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def command(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "norce_sync", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_views_answer_for_the_group_behind_the_token(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    sim_cfg = SimulatorConfig(port=0, lead_time_s=0.2, token_rate_limit=False)
    async with SimulatorServer(sim_cfg) as sim:
        # The prices' SKUs exist: Norce ignores (and the service holds back) the others.
        sim.state.seed({"sku": [{"PartNo": f"SKU-{n:05d}"} for n in range(KEYS)]})
        config, topics = write_config(tmp_path, unique)
        env = worker_env(
            kafka_servers,
            unique,
            sim.url,
            config,
            tmp_path,
            NORCE_SYNC_OPS_TOKEN=TOKEN,
            NORCE_SYNC_OPS_BACKLOG_INTERVAL_S="0.5",
        )
        # Started side by side: they join the group together (one rebalance, not two).
        a, b = await start_workers(
            "norce_sync", (env, tmp_path / "a.log"), (env, tmp_path / "b.log")
        )
        try:
            # -- the guard ---------------------------------------------------------------
            assert (await get(a, "/jobs/")).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert (await get(a, "/jobs/", headers=wrong)).status_code == 401
            assert (await get(a, "/table/", headers=wrong)).status_code == 401  # Faust's own
            assert (await get(a, "/metrics")).status_code == 401
            assert (await get(a, "/export/stats")).status_code == 401  # the export flow's
            assert (await get(a, "/health")).status_code == 200
            assert (await get(a, "/")).status_code == 200  # the static page, no data
            async with httpx.AsyncClient(timeout=30) as client:
                hook = await client.post(
                    f"{a.url}/norce/events/SkuChangedNotification",
                    content=b"{}",
                    headers={"x-norce-webhook-token": "demo-webhook-token"},
                )
            # The webhook keeps its own token: no ops token needed (400: an empty event).
            assert hook.status_code != 401, hook.text

            # -- pending and dead letters for the whole group -----------------------------
            changes = [
                (key_bytes(row, PRICE_KEY), envelope("prices", "c", row, lsn=1000 + n))
                for n in range(KEYS)
                for row in [price_row(f"SKU-{n:05d}", 10.0 + n)]
            ]
            await produce(kafka_servers, topics["price"], changes)
            await produce(kafka_servers, topics["price"], [(b"bad", b"not json")], raw=True)

            async def backlog(worker: WorkerProcess) -> int:
                data = await view(worker, "/pending/")
                if data["partitions_missing"]:
                    return -1
                return sum(b["keys"] for b in data["backlog"] if b["kind"] == "price")

            for worker in (a, b):
                await wait_until(
                    lambda w=worker: _is(backlog(w), KEYS), timeout=60, what="group backlog"
                )
            assert len((await view(a, "/pending/"))["workers"]) == 2  # both own partitions
            for worker in (a, b):
                await wait_until(
                    lambda w=worker: _is(_dlq_total(w), 1), timeout=30, what="dead letter"
                )
            dlq = await view(b, "/dlq/")
            assert dlq["by_stage"] == {"decode": 1}
            assert dlq["latest"][0]["topic"] == topics["price"]

            # -- jobs -------------------------------------------------------------------
            for worker in (a, b):  # one after the other: a pair runs one job at a time

                async def post(w: WorkerProcess = worker) -> httpx.Response | None:
                    async with httpx.AsyncClient(timeout=60) as client:
                        answer = await client.post(f"{w.url}/delta/erp/price", headers=AUTH)
                    return None if answer.status_code in (409, 503) else answer

                posted = await wait_until(post, timeout=30, what="delta accepted")
                assert posted.status_code == 200, posted.text
                await wait_until(lambda: _no_open_jobs(a), timeout=30, what="jobs finished")
            jobs = await view(b, "/jobs/?status=succeeded&source=erp&kind=price")
            assert jobs["total"] == 2
            assert sum(j["item_count"] for j in jobs["jobs"]) == KEYS
            assert jobs["jobs"][0]["submitted_at"] >= jobs["jobs"][1]["submitted_at"]
            assert (await view(b, "/jobs/?status=failed"))["total"] == 0
            assert (await view(b, "/jobs/?limit=1&offset=1"))["jobs"] == jobs["jobs"][1:]

            detail = await view(a, f"/jobs/{jobs['jobs'][0]['job_id']}")
            assert detail["batch_id"] == jobs["jobs"][0]["batch_id"]
            assert detail["log_source"] == "norce" and detail["log"], detail
            assert (await get(a, "/jobs/nope", headers=AUTH)).status_code == 404

            for worker in (a, b):
                await wait_until(lambda w=worker: _is(backlog(w), 0), what="backlog drained")

            metrics = await get(a, "/metrics", headers=AUTH)
            assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
            # Parsed, not matched as text: the exposition's label order carries no meaning.
            samples = _samples(metrics.text)
            assert samples[("norce_sync_jobs", ("erp", "price", "succeeded"))] == 2
            assert samples[("norce_sync_dlq_records", ("decode",))] == 1
        finally:
            await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))

    # -- the commands, with no worker running --------------------------------------------
    # The read-only commands run side by side (each is a process of its own); the replay,
    # which writes, after them.
    jobs_json, jobs_text, dlq_json, dry_all, dry_map = await asyncio.gather(
        *(
            asyncio.to_thread(command, env, *args)
            for args in (
                ("jobs", "--json", "--status", "succeeded"),
                ("jobs", "--source", "erp"),
                ("dlq", "list", "--json", "--stage", "decode"),
                ("dlq", "replay", "--dry-run"),
                ("dlq", "replay", "--stage", "map", "--dry-run"),
            )
        )
    )
    assert orjson.loads(jobs_json)["total"] == 2
    assert "succeeded" in jobs_text
    letters = orjson.loads(dlq_json)
    assert [(d["stage"], d["key"]) for d in letters] == [("decode", "bad")]
    assert "1 would be replayed" in dry_all
    assert "0 would be replayed" in dry_map
    assert "replayed 1" in command(env, "dlq", "replay", "--since", "1h")
    records = await read_all(kafka_servers, topics["price"])
    assert len(records) == KEYS + 2
    replayed = next(r for r in records if r.key == b"bad" and r.headers)
    assert replayed.value == b"not json"
    assert dict(replayed.headers)["norce-sync-replayed-from"].endswith(b":0")


async def _is(value: Any, expected: Any) -> bool:
    return (await value) == expected


async def _dlq_total(worker: WorkerProcess) -> int:
    return int((await view(worker, "/dlq/"))["total"])


async def _no_open_jobs(worker: WorkerProcess) -> bool:
    counts = (await view(worker, "/jobs/"))["counts"]
    return bool(counts) and set(counts) <= {"succeeded"}


def _samples(text: str) -> dict[tuple[str, tuple[str, ...]], float]:
    """(sample name, label values in declaration order) -> value."""
    order = {
        "norce_sync_jobs": ("source", "kind", "status"),
        "norce_sync_dlq_records": ("stage",),
    }
    return {
        (s.name, tuple(s.labels[n] for n in order[s.name])): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in order
    }

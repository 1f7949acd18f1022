"""The worker's web surface against callers it cannot trust: junk event types cannot grow
``/metrics``; with an ops token set, both webhook routes still answer to the webhook
token; without one, a browser on another site cannot trigger a delta; and a worker open
to other hosts without a token does not start."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from norce_simulator import SimulatorServer
from tests.integration.export.support import (
    TOKEN,
    TOKEN_HEADER,
    sim_config,
    start_worker,
    stop_worker,
    worker_env,
)
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

OPS_TOKEN = f"ops-{uuid.uuid4().hex}"
BODY = orjson.dumps({"ClientId": 1, "PartNo": "W1"})


def webhook_series(metrics_text: str) -> set[tuple[str, str]]:
    families = text_string_to_metric_families(metrics_text)
    return {
        (s.labels["event_type"], s.labels["code"])
        for family in families
        if family.name == "norce_sync_webhooks"
        for s in family.samples
        if s.name == "norce_sync_webhooks_total"
    }


async def test_webhook_routes_open_and_labels_bounded_with_an_ops_token(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    async with SimulatorServer(sim_config()) as sim:
        env = worker_env(
            f"web-{unique}", kafka_servers, sim, tmp_path / "data", NORCE_SYNC_OPS_TOKEN=OPS_TOKEN
        )
        worker = await start_worker(env, tmp_path / "worker.log")
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                hook = {TOKEN_HEADER: TOKEN}
                typed = await http.post(
                    f"{worker.url}/norce/events/SkuChangedNotification", content=BODY, headers=hook
                )
                by_header = await http.post(
                    f"{worker.url}/norce/events",
                    content=BODY,
                    headers={**hook, "x-norce-event-type": "SkuChangedNotification"},
                )
                assert (typed.status_code, by_header.status_code) == (200, 200), by_header.text
                # ... and the ops views still want the ops token.
                views = await http.get(f"{worker.url}/jobs/")
                assert views.status_code == 401

                # 1,000 invented types, without a token and with one, on both routes.
                async def junk(n: int) -> None:
                    kind = f"Junk{uuid.uuid4().hex}"
                    if n % 2:
                        await http.post(f"{worker.url}/norce/events/{kind}", content=BODY)
                    else:
                        await http.post(
                            f"{worker.url}/norce/events",
                            content=BODY,
                            headers={**hook, "x-norce-event-type": kind},
                        )

                for start in range(0, 1000, 50):
                    await asyncio.gather(*(junk(n) for n in range(start, start + 50)))
                auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
                text = (await http.get(f"{worker.url}/metrics", headers=auth)).text
        finally:
            assert await stop_worker(worker) == 0, worker.tail()
    series = webhook_series(text)
    assert series == {
        ("SkuChangedNotification", "200"),
        ("unknown", "401"),
        ("unknown", "404"),
    }, series


async def test_a_cross_site_post_is_refused_without_an_ops_token(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    async with SimulatorServer(sim_config()) as sim:
        env = worker_env(f"web-{unique}", kafka_servers, sim, tmp_path / "data")
        worker = await start_worker(env, tmp_path / "worker.log")
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                url = f"{worker.url}/delta/erp/price"
                evil = await http.post(url, headers={"Origin": "https://evil.example"})
                fetch = await http.post(url, headers={"Sec-Fetch-Site": "cross-site"})
                sandboxed = await http.post(url, headers={"Origin": "null"})
                assert (evil.status_code, fetch.status_code, sandboxed.status_code) == (
                    403,
                    403,
                    403,
                ), evil.text
                # the dashboard (same origin) and non-browser callers are not refused
                own = await http.post(
                    url, headers={"Origin": worker.url, "Sec-Fetch-Site": "same-origin"}
                )
                cli = await http.post(url)
                assert own.status_code != 403 and cli.status_code != 403, own.text
                # reading stays possible (a cross-site GET cannot read the answer anyway)
                assert (await http.get(url, headers={"Origin": "https://evil.example"})).is_success
        finally:
            assert await stop_worker(worker) == 0, worker.tail()


def refused_start(env: dict[str, str], tmp_path: Path) -> str:
    """Start a worker that must refuse to: exit status 78. Returns its log."""
    worker = WorkerProcess("norce_sync", env, tmp_path / "worker.log")
    with pytest.raises(RuntimeError, match="worker exited"):
        worker.start(ready_timeout=60)
    assert worker.proc is not None and worker.proc.returncode == 78
    return (tmp_path / "worker.log").read_text()


def test_a_worker_open_to_other_hosts_without_an_ops_token_does_not_start(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    env = worker_env(
        f"web-{unique}",
        kafka_servers,
        SimpleSim(),  # type: ignore[arg-type]
        tmp_path / "data",
        NORCE_SYNC_WEB_HOST="0.0.0.0",
    )
    log = refused_start(env, tmp_path)
    lines = [line for line in log.splitlines() if "NORCE_SYNC_OPS_TOKEN" in line]
    assert len(lines) == 1 and "refusing to start" in lines[0], lines


class SimpleSim:
    """Only the URL of a simulator: the worker refuses before it calls Norce."""

    url = "http://127.0.0.1:9"


def test_a_worker_for_real_norce_refuses_a_demo_source_secret_by_name(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    # The sync config's secrets are checked by the worker too (the ops layer hands the
    # check to the app: streams knows only the settings).
    env = worker_env(
        f"web-{unique}",
        kafka_servers,
        RemoteNorce(),  # type: ignore[arg-type]
        tmp_path / "data",
        NORCE_SYNC_NORCE_CLIENT_SECRET=f"norce-{unique}",
        NORCE_SYNC_ERP_CLIENT_SECRET="erp-demo-secret",
    )
    log = refused_start(env, tmp_path)
    refusals = [line for line in log.splitlines() if "refusing to start" in line]
    assert len(refusals) == 1, refusals
    demo = "NORCE_SYNC_ERP_CLIENT_SECRET (client secret of source erp) holds a demo value"
    assert demo in refusals[0]
    assert "erp-demo-secret" not in log


class RemoteNorce:
    """A Norce that is not on loopback (never called: the worker refuses first)."""

    url = "https://demo.api-se.playground.norce.tech"

"""A broker outage, as the worker shows it: ``/ready`` answers 503 while the broker is
away and 200 again after; the log says it once when it starts, summarises while it lasts
and says once when it cleared, instead of thousands of repeated errors.

Uses a private broker (tools/kafka), so the session broker is never stopped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.broker import PrivateBroker
from tests.support.stack import start_worker, wait_until, worker_env, write_config

pytestmark = pytest.mark.integration

NOISY = (" WARNING ", " ERROR ", " CRITICAL ")


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    private = PrivateBroker("norce-sync-kafka-ready-")
    private.up()
    try:
        yield private
    finally:
        private.down()


async def ready_status(url: str) -> int:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{url}/ready")).status_code
    except httpx.HTTPError:
        return 0


async def test_ready_follows_the_broker_and_the_outage_is_a_few_log_lines(
    broker: PrivateBroker, tmp_path: Path
) -> None:
    unique = uuid.uuid4().hex[:10]
    config, _ = write_config(tmp_path, unique)
    env = worker_env(
        broker.servers,
        unique,
        "http://127.0.0.1:9",  # no Norce call happens in this test
        config,
        tmp_path,
        NORCE_SYNC_BROKER_PROBE_INTERVAL_S="0.5",
        NORCE_SYNC_LOG_REPEAT_WINDOW_S="5",
    )
    log = tmp_path / "worker.log"
    worker = await start_worker("norce_sync", env, log)
    try:
        before = len(log.read_text(errors="replace").splitlines())
        await asyncio.to_thread(broker.down)

        async def not_ready() -> bool:
            return await ready_status(worker.url) == 503

        await wait_until(not_ready, timeout=30, what="/ready to answer 503")

        def outage_log() -> list[str]:
            return log.read_text(errors="replace").splitlines()[before:]

        # The outage lasts until the log has summarised a repeated error at least twice.
        await wait_until(
            lambda: sum("[repeated " in line for line in outage_log()) >= 2,
            timeout=90,
            what="repeated errors summarised",
        )
        assert await ready_status(worker.url) == 503
        async with httpx.AsyncClient(timeout=5) as client:
            body = (await client.get(f"{worker.url}/ready")).json()
        assert [d["name"] for d in body["dependencies_down"]] == ["broker"]  # which one
        during = outage_log()
        await asyncio.to_thread(broker.up)

        async def ready() -> bool:
            return await ready_status(worker.url) == 200

        await wait_until(ready, timeout=120, what="/ready to answer 200 again")
        await wait_until(
            lambda: any(
                "cleared after" in line and "Unable connect to node" in line
                for line in outage_log()
            ),
            timeout=60,
            what="the connection errors to be reported cleared",
        )
    finally:
        worker.stop()
    lines = outage_log()
    assert sum("broker unreachable" in line for line in lines) == 1, "\n".join(lines)
    assert sum("broker reachable again" in line for line in lines) == 1
    noisy = [line for line in during if any(level in line for level in NOISY)]
    # Each condition once, then a summary per 5 s window: a few dozen lines, not thousands.
    assert len(noisy) < 120, "\n".join(noisy)

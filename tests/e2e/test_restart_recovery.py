"""The foundation's proof on a real broker: a worker's table survives a restart through
its changelog, and committed messages are not processed again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.kafka import produce, wait_for_records
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.e2e

KEYS = [b"alpha", b"beta", b"gamma"]


async def get_json(url: str) -> object:
    async with httpx.AsyncClient() as client:
        return (await client.get(url)).json()


async def test_table_recovers_from_changelog_and_processing_continues(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    topic_in, topic_out = f"counter-in-{unique}", f"counter-out-{unique}"
    env = {
        "NORCE_SYNC_APP_ID": f"counter-{unique}",
        "NORCE_SYNC_BROKER": f"kafka://{kafka_servers}",
        # The memory store keeps nothing on disk: after a restart the table can only come
        # back from its changelog topic.
        "NORCE_SYNC_STORE": "memory://",
        "NORCE_SYNC_TOPIC_PARTITIONS": "3",
        "NORCE_SYNC_DATA_DIR": str(tmp_path / "data"),
        "COUNTER_IN": topic_in,
        "COUNTER_OUT": topic_out,
    }
    worker = WorkerProcess("tests.apps.counter_app", env, tmp_path / "worker.log").start()
    try:
        await produce(kafka_servers, topic_in, [(k, {"n": i}) for i in range(10) for k in KEYS])
        await wait_for_records(kafka_servers, topic_out, 30)
        assert await get_json(f"{worker.url}/counts") == {"alpha": 10, "beta": 10, "gamma": 10}
    finally:
        assert worker.stop() == 0, worker.tail()

    restarted = WorkerProcess("tests.apps.counter_app", env, tmp_path / "worker2.log").start()
    try:
        recovered = await get_json(f"{restarted.url}/counts")
        assert recovered == {"alpha": 10, "beta": 10, "gamma": 10}

        await produce(kafka_servers, topic_in, [(k, {"n": 10}) for k in KEYS])
        records = await wait_for_records(kafka_servers, topic_out, 33)
        # Give a wrongly re-delivered message time to show up before counting.
        records = await wait_for_records(kafka_servers, topic_out, 33, timeout=5)
    finally:
        assert restarted.stop() == 0, restarted.tail()

    outputs = [orjson.loads(r.value) for r in records]
    assert len(outputs) == 33, "a committed message was processed again"
    assert len({(o["partition"], o["offset"]) for o in outputs}) == 33
    last_count = {o["key"]: o["count"] for o in outputs}
    assert last_count == {"alpha": 11, "beta": 11, "gamma": 11}
    assert Counter(o["key"] for o in outputs) == {"alpha": 11, "beta": 11, "gamma": 11}

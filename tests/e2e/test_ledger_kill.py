"""The jobs ledger survives a SIGKILL right after Faust commits the job events' offsets
(issue 23, item 9): every event below the committed offset is folded into the ledger's
changelog, also when changelog sends are slower than Faust's flush wait.

Before, the fold wrote the Faust table (``jobs[key] = ...``), whose changelog record only
queued in Faust's producer buffer; the commit did not wait for it (the flaw
tests/e2e/test_faust_commit_order.py shows), so a ``posted`` below the committed offset
could be lost for good: the restarted worker resumes after it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.messages import Intent, SubmitFailed
from tests.support.kafka import produce, read_all
from tests.support.stack import worker_env, write_config
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.e2e

BATCHES = 60


async def committed_offset(servers: str, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


async def test_sigkill_after_a_commit_loses_no_folded_job_event(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    config, _ = write_config(tmp_path, unique)
    env = worker_env(kafka_servers, unique, "http://127.0.0.1:9", config, tmp_path)
    app_id = env["NORCE_SYNC_APP_ID"]
    first = WorkerProcess(
        "tests.apps.ledger_kill_app",
        {**env, "LEDGER_CHANGELOG_DELAY_S": "0.15", "LEDGER_KILL_AFTER_COMMIT": "10"},
        tmp_path / "w1.log",
    )
    await asyncio.to_thread(first.start)
    events = []
    for i in range(BATCHES):  # offset 2i: the intent, 2i+1: its outcome
        batch = f"b{i:03d}"
        events.append(Intent(batch_id=batch, source="erp", kind="price", mode="delta"))
        events.append(SubmitFailed(batch_id=batch, reason="test"))
    await produce(
        kafka_servers,
        f"{app_id}-job-events",
        [(e.batch_id.encode(), e.to_bytes()) for e in events],
        raw=True,
    )
    assert first.proc is not None
    await asyncio.to_thread(first.proc.wait, 120)
    assert first.proc.returncode == -9, first.tail()

    committed = await committed_offset(kafka_servers, app_id, f"{app_id}-job-events")
    assert committed is not None and committed >= 10
    ledger: dict[bytes, dict | None] = {}
    for record in await read_all(kafka_servers, f"{app_id}-jobs-changelog"):
        ledger[record.key] = None if record.value is None else orjson.loads(record.value)
    lost = []
    for offset in range(committed):
        batch = f"b{offset // 2:03d}".encode()
        want = "intent" if offset % 2 == 0 else "submit_failed"
        value = ledger.get(batch)
        if value is None or (want == "submit_failed" and value["status"] != want):
            lost.append((offset, batch.decode(), want))
    assert not lost, f"committed {committed}; folded but lost: {lost[:10]} ({len(lost)})"

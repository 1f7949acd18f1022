"""A failed delta's keys are re-queued even when its batch record is gone (issue 23,
item 10): ``read_record`` checks the offset it read and times out instead of reading a
different batch or waiting for ever, and the tracker falls back to the pair's keys from
state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete

from norce_simulator import SimulatorServer
from streams.kafka import RecordUnavailable, read_record
from streams.settings import Settings
from tests.support.debezium import price_change
from tests.support.kafka import create_topics, produce, read_all
from tests.support.stack import (
    deliver,
    import_worker,
    ledger,
    trigger_delta,
    wait_applied,
    wait_until,
)


async def delete_before(servers: str, topic: str, offset: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(offset)})
    finally:
        await admin.close()


async def test_read_record_never_reads_another_record_nor_waits_for_ever(
    kafka_servers: str, unique: str
) -> None:
    topic = f"batches-{unique}"
    await create_topics(kafka_servers, [topic])
    await produce(kafka_servers, topic, [(b"k", f"batch-{i}".encode()) for i in range(3)], raw=True)
    await delete_before(kafka_servers, topic, 2)  # delete retention took offsets 0 and 1
    settings = Settings(broker=f"kafka://{kafka_servers}")
    assert await read_record(settings, topic, 0, 2) == b"batch-2"
    with pytest.raises(RecordUnavailable, match="not in the log"):
        # before: the seek below the log start landed on offset 2, another batch
        await asyncio.wait_for(read_record(settings, topic, 0, 0), 20)
    with pytest.raises(RecordUnavailable, match="not in the log"):
        # before: past the end, getone() waited for ever
        await asyncio.wait_for(read_record(settings, topic, 0, 7), 20)


async def test_a_failed_delta_whose_batch_record_is_gone_is_requeued_from_state(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (worker, env, topics):
        app_id = env["NORCE_SYNC_APP_ID"]
        sim.state.set_faults({"fail_next_jobs": 1, "job_extra_lead_time_s": 3.0})
        await produce(kafka_servers, topics["price"], [price_change(n, 1) for n in range(20)])
        await wait_applied([worker], "erp", "price", 20)
        assert len((await trigger_delta(worker, "erp", "price"))["batches"]) == 1
        # While the job runs (and then fails), retention deletes its batch record.
        batches = f"{app_id}-batches"
        end = len(await read_all(kafka_servers, batches))
        await delete_before(kafka_servers, batches, end)

        async def failed_and_settled() -> bool:
            records = (await ledger(kafka_servers, app_id)).values()
            return any(r.status == "failed" and r.settled for r in records)

        await wait_until(failed_and_settled, timeout=60, what="the failed job to be settled")
        expected = {f"SKU-{n:05d}": float(n * 100 + 1) for n in range(20)}
        await deliver(worker, sim, expected)
        requeued = [
            r for r in (await ledger(kafka_servers, app_id)).values() if r.status == "failed"
        ]
        assert len(requeued) == 1

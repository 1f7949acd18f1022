"""Hostile records on the events topic between valid ones: each is dead-lettered with a
reason, every valid event reaches the targets, and the partitions keep committing
(issue 23, item 8: a flush that raised used to leave its events neither acknowledged nor
dead-lettered, so their partition never committed again)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.export.events import NorceEvent
from norce_simulator import SimulatorServer
from tests.integration.export.support import (
    eventually,
    records_by_key,
    sim_config,
    start_worker,
    stop_worker,
    worker_env,
)
from tests.support.kafka import read_all

pytestmark = pytest.mark.asyncio(loop_scope="module")


def event(part_no: str) -> bytes:
    return NorceEvent(
        event_type="SkuPriceChangedNotification",
        kind="sku",
        entity_id=part_no,
        received_at=time.time(),
        body={"PartNo": part_no},
    ).to_bytes()


async def committed_to_the_end(servers: str, group: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    ends = {}
    for record in await read_all(servers, topic, timeout=5):
        ends[record.partition] = record.offset + 1
    return bool(ends) and all(
        (meta := committed.get(TopicPartition(topic, p))) is not None and meta.offset >= end
        for p, end in ends.items()
    )


async def test_bad_events_are_dead_lettered_and_the_valid_ones_around_them_delivered(
    kafka_servers: str, tmp_path: Path
) -> None:
    app_id = f"exp-bad-{uuid.uuid4().hex[:8]}"
    events_topic, digests = f"{app_id}-norce-events", f"{app_id}-export-digests-changelog"
    # A corrupt dedupe digest for CD1 in the changelog the worker loads at assignment.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(digests, 2, 1, topic_configs={"cleanup.policy": "compact"})]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_servers, acks="all")
    await producer.start()
    try:
        for partition in (0, 1):
            await producer.send_and_wait(digests, b"{corrupt", key=b"sku:CD1", partition=partition)
    finally:
        await producer.stop()

    valid = [f"V{i:02d}" for i in range(20)]
    async with SimulatorServer(sim_config()) as sim:
        sim.state.seed(
            {
                "sku": [{"PartNo": p, "EanCode": f"ean-{p}"} for p in [*valid, "CD1"]],
                "price": [{"PartNo": p, "PriceListCode": "STD", "PriceSale": 3.0} for p in valid],
            }
        )
        env = worker_env(
            app_id, kafka_servers, sim, tmp_path / "data", NORCE_SYNC_EXPORT_WINDOW_S="0.3"
        )
        worker = await start_worker(env, tmp_path / "worker.log")
        try:
            hostile: list[tuple[bytes | None, bytes | None]] = [
                (None, event("NOKEY")),  # a record without a key
                (b"sku:", event("EMPTY")),  # a key without an id
                (b"\xff\xfe", event("BIN")),  # a key that is not UTF-8
                (b"sku:JUNK", b"\x00\xff binary junk"),  # a value that is no event
                (b"sku:CD1", event("CD1")),  # its dedupe digest is corrupt
                (b"sku:NULL", None),  # a tombstone on the events topic
                (b"sku:EMPTY2", b""),  # an empty value
                (b"sku:ARRAY", b"[]"),  # JSON, not an object
                (
                    b"sku:TYPES",
                    orjson.dumps(
                        {
                            "event_type": 5,
                            "kind": "sku",
                            "entity_id": [],
                            "received_at": "x",
                            "body": 1,
                        }
                    ),
                ),  # wrong types in every field
                (b"customer:abc", event("abc").replace(b'"sku"', b'"customer"')),  # not an Id
            ]
            producer = AIOKafkaProducer(bootstrap_servers=kafka_servers, acks="all")
            await producer.start()
            try:
                batch = [(f"sku:{p}".encode(), event(p)) for p in valid[:10]]
                batch += hostile + [(f"sku:{p}".encode(), event(p)) for p in valid[10:]]
                for key, value in batch:
                    await producer.send_and_wait(events_topic, value, key=key)
            finally:
                await producer.stop()

            async def valid_delivered() -> bool:
                out = await records_by_key(kafka_servers, f"{app_id}.out.search.sku")
                return all(p.encode() in out and out[p.encode()][-1].value for p in valid)

            await eventually(valid_delivered, timeout=60, what="every valid SKU delivered")

            async def hostile_dead_lettered() -> bool:
                letters = [orjson.loads(r.value) for r in await read_all(kafka_servers, env[
                    "NORCE_SYNC_DLQ_TOPIC"], timeout=5)]  # fmt: skip
                return len({(x["partition"], x["offset"]) for x in letters}) >= len(hostile)

            await eventually(hostile_dead_lettered, timeout=60, what="every bad record lettered")
            letters = [
                orjson.loads(r.value)
                for r in await read_all(kafka_servers, env["NORCE_SYNC_DLQ_TOPIC"], timeout=5)
            ]
            assert len(letters) == len(hostile), letters
            assert all(x["topic"] == events_topic and x["reason"] for x in letters)
            reasons = " | ".join(x["reason"] for x in letters)
            assert "not an entity key" in reasons and "not a Norce event" in reasons
            assert "records not built" in reasons  # the corrupt digest, CD1 alone
            assert "bad entity key" in reasons  # customer:abc

            await eventually(
                lambda: committed_to_the_end(kafka_servers, f"{app_id}-export", events_topic),
                timeout=30,
                what="the export group to commit every partition to its end",
            )
        finally:
            assert await stop_worker(worker) == 0, worker.tail()

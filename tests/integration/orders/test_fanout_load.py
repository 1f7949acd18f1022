"""The orders fanout taking partitions (real broker): which refs each destination already
holds is read per partition, and all newly assigned partitions are read with one reader
per destination topic.

Why the reader count matters to users: the load runs inside the rebalance callback,
where aiokafka sends no heartbeats. With one reader per partition (each a client start-up
asking the broker for every topic's metadata) a worker taking 8 partitions on a loaded
host with a broker of thousands of topics outlasted the group's session timeout: it was
dropped, rejoined and loaded again, every ~10 s, without end (0.1-0.16 CPU s/s of an
otherwise idle worker)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition

import streams.kafka_reads
from agents.orders.digest import DIGEST_HEADER
from agents.orders.fanout import OrdersFanout, OrderTargetSpec
from streams import kafka
from streams.settings import Settings
from tests.support.kafka import create_topics

pytestmark = pytest.mark.asyncio

PARTITIONS = 8


async def test_taking_many_partitions_reads_each_destination_once_and_keeps_partitions_apart(
    kafka_servers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unique = uuid.uuid4().hex[:8]
    received, orders, target = (f"{n}-{unique}" for n in ("received", "orders", "out-erp"))
    await create_topics(kafka_servers, [received, orders, target], partitions=PARTITIONS)
    settings = Settings(broker=f"kafka://{kafka_servers}", app_id=f"fanout-{unique}")
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for topic, partition, ref, digest in [
            (orders, 1, b"A", b"d-a1"),
            (orders, 1, b"A", b"d-a2"),  # a later copy: the first stands
            (orders, 1, b"B", b"d-b"),
            (orders, 5, b"C", b"d-c"),
            (target, 1, b"A", b"d-a1"),
            (target, 6, b"C", b"d-c"),  # held by the target only (e.g. a crash in between)
        ]:
            await producer.send_and_wait(
                topic, b"{}", key=ref, partition=partition, headers=[(DIGEST_HEADER, digest)]
            )
    finally:
        await producer.stop()

    readers: list[Any] = []
    real_consumer = streams.kafka_reads.consumer

    def counted(*args: Any, **kwargs: Any) -> Any:
        readers.append(real_consumer(*args, **kwargs))
        return readers[-1]

    monkeypatch.setattr(streams.kafka_reads, "consumer", counted)
    fanout = OrdersFanout(
        None, settings, received, orders, [OrderTargetSpec("erp", target, lambda d: d)]
    )
    assigned = [TopicPartition(received, p) for p in range(PARTITIONS)]
    await fanout.take(assigned)

    assert len(readers) == 2  # one per destination topic, not one per partition and topic
    assert fanout.canonical[1] == {"A": ("d-a1", 0), "B": ("d-b", 2)}
    assert fanout.canonical[5] == {"C": ("d-c", 0)}
    assert sorted(fanout.canonical) == list(range(PARTITIONS))
    assert all(not fanout.canonical[p] for p in range(PARTITIONS) if p not in (1, 5))
    assert fanout.seen[target][1] == {"A"}
    assert fanout.seen[target][6] == {"C"}
    assert sorted(fanout.seen[target]) == list(range(PARTITIONS))
    assert all(not fanout.seen[target][p] for p in range(PARTITIONS) if p not in (1, 6))

    # Taken again (a rebalance that kept them): nothing is read again.
    await fanout.take(assigned)
    assert len(readers) == 2
    # One given up and taken back: only it is read, still one reader per topic.
    await fanout.release([TopicPartition(received, 5)])
    await fanout.take(assigned)
    assert len(readers) == 4
    assert fanout.canonical[5] == {"C": ("d-c", 0)}

"""Kafka's default key partitioning, computed faster (``streams.partitioning``) and used by
every producer the project builds: it must pick exactly the partition aiokafka's (and the
Java client's) default partitioner picks, or a key's records would change partition."""

from __future__ import annotations

import random

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from aiokafka.structs import PartitionMetadata

from streams.kafka import TopicTrackingProducer
from streams.partitioning import key_partition, murmur2


def keys() -> list[bytes]:
    rng = random.Random(24)
    found = [b"", b"a", b"ab", b"abc", b"sku:1001", "sku:åäö-ü".encode(), bytes(range(256))]
    found += [rng.randbytes(rng.randrange(0, 80)) for _ in range(20_000)]
    return found


def test_murmur2_is_kafkas_for_every_length_and_byte() -> None:
    for key in keys():
        assert murmur2(key) == aiokafka_murmur2(key), key


def test_key_partition_is_the_default_partitioners() -> None:
    default = DefaultPartitioner()
    for count in (1, 2, 3, 8, 12, 50):
        every = list(range(count))
        for key in keys()[:3000]:
            assert key_partition(key, count) == default(key, every, every), (key, count)


def _metadata(producer: AIOKafkaProducer, topic: str, count: int, down: int = -1) -> None:
    producer.client.cluster._partitions[topic] = {
        p: PartitionMetadata(topic, p, -1 if p == down else 0, [0], [0], None) for p in range(count)
    }


async def test_the_projects_producer_partitions_as_aiokafkas() -> None:
    ours = TopicTrackingProducer(bootstrap_servers="127.0.0.1:1")
    theirs = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")
    try:
        for producer in (ours, theirs):
            _metadata(producer, "t8", 8, down=3)  # a leaderless partition changes nothing
            _metadata(producer, "t1", 1)
        for topic in ("t8", "t1"):
            for key in keys()[:2000]:
                a = ours._partition(topic, None, key, b"v", key, b"v")
                assert a == theirs._partition(topic, None, key, b"v", key, b"v"), (topic, key)
        assert ours._partition("t8", 5, b"k", b"v", b"k", b"v") == 5  # explicit partition
    finally:
        for producer in (ours, theirs):
            await producer.stop()

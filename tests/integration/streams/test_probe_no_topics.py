"""The readiness probe asks the broker for no topic: its answer stays a few bytes however
many topics the cluster holds (an all-topics answer from a cluster of thousands of topics
held the worker's event loop 60-240 ms to decode, every probe, and with it every order
answer in flight)."""

from __future__ import annotations

import pytest

from streams import kafka
from streams.health import BrokerProbe, brokers_answer
from streams.settings import Settings
from tests.support.kafka import PLAINTEXT, create_topics

pytestmark = pytest.mark.integration


async def test_the_probe_answer_names_brokers_and_no_topic(kafka_servers: str, unique: str) -> None:
    await create_topics(kafka_servers, [f"probe-{unique}"])
    client = kafka.metadata_client(PLAINTEXT, servers=kafka_servers)
    await client.bootstrap()
    try:
        answer = await brokers_answer(client)
    finally:
        await client.close()
    assert answer.brokers and not answer.topics
    probe = BrokerProbe(
        Settings(kafka_security_protocol="PLAINTEXT", broker=f"kafka://{kafka_servers}")
    )
    try:
        assert await probe.probe()
    finally:
        await probe.close()

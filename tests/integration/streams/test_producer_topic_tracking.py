"""The service's producers keep every topic they write to in their metadata.

aiokafka's client learns all topics from its first, untargeted metadata answer but only
tracks the ones a send had to wait for. A send to a new topic then narrows the refreshes
to the tracked ones; a batch still waiting for an untracked topic loses its leader and
``flush()`` hangs until the request timeout (20 minutes under Faust). CI saw a worker
that could not stop because of it."""

from __future__ import annotations

import asyncio

import pytest

from streams import kafka
from tests.support.kafka import PLAINTEXT, create_topics

pytestmark = pytest.mark.integration


async def test_a_batch_waiting_for_a_known_topic_survives_a_send_to_a_new_one(
    kafka_servers: str, unique: str
) -> None:
    known, new = f"tracking-known-{unique}", f"tracking-new-{unique}"
    await create_topics(kafka_servers, [known])
    # A long linger keeps the first batch in the accumulator while the metadata changes.
    producer = kafka.producer(PLAINTEXT, servers=kafka_servers, linger_ms=2000)
    await producer.start()
    try:
        # A refresh while no topic is tracked asks for every topic, ``known`` too (Faust
        # refreshes its producer's metadata like this after creating a topic).
        await producer.client.force_metadata_update()
        waiting = await producer.send(known, b"first")
        await create_topics(kafka_servers, [new])
        await (await producer.send(new, b"second"))  # narrows the metadata refreshes
        await asyncio.wait_for(producer.flush(), timeout=30)
        assert (await asyncio.wait_for(waiting, timeout=1)).topic == known
    finally:
        await producer.stop()

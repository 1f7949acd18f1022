"""Readers that let the broker hold an idle fetch long (``FOLLOWER_FETCH_WAIT_MS``) still
see a record as soon as it is written (real broker): the broker answers a held fetch
when data arrives, so the long hold only makes an idle worker ask less often.

Each round writes one record while the reader is idle (its fetch held) and times until
the reader has it; a reader that waited out the hold would take 5 s."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from agents.orders.ledger import RefLedger
from streams import kafka
from streams.kafka import FOLLOWER_FETCH_WAIT_MS
from streams.kafka_reads import TopicMirror
from streams.settings import Settings
from tests.support.kafka import create_topics

pytestmark = pytest.mark.asyncio

ROUNDS = 3
PROMPT_S = FOLLOWER_FETCH_WAIT_MS / 1000 / 2  # well inside one held fetch


async def _until(condition: object, timeout: float) -> float:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise TimeoutError
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_a_followed_topic_sees_a_new_record_without_waiting_out_the_held_fetch(
    kafka_servers: str,
) -> None:
    topic = f"followed-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_servers, [topic], partitions=2)
    settings = Settings(broker=f"kafka://{kafka_servers}", app_id="followers")
    mirror: TopicMirror[bytes] = TopicMirror(topic, lambda raw: raw)
    following = asyncio.create_task(mirror.follow(settings))
    producer = kafka.producer(settings)
    await producer.start()
    try:
        await asyncio.wait_for(mirror.caught_up.wait(), 30)  # idle: its fetch is held
        for i in range(ROUNDS):
            key = b"k%d" % i
            await producer.send_and_wait(topic, b"v", key=key, partition=i % 2)
            took = await _until(lambda key=key: key in mirror.values, 10)
            assert took < PROMPT_S, f"round {i}: {took:.2f}s"
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await producer.stop()


async def test_the_orders_ledger_tail_settles_on_another_workers_order_promptly(
    kafka_servers: str,
) -> None:
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_servers, [topic], partitions=2)
    settings = Settings(broker=f"kafka://{kafka_servers}", app_id="ledger-tail")
    ledger = RefLedger(settings, topic)
    producer = kafka.producer(settings)  # another worker's receiver
    await ledger.start()
    await producer.start()
    try:
        await asyncio.wait_for(ledger.ready.wait(), 30)
        for i in range(ROUNDS):
            ref = f"R{i}"
            await producer.send_and_wait(topic, b"{}", key=ref.encode(), partition=i % 2)
            started = time.monotonic()
            end = await ledger.end_offset(i % 2)
            await asyncio.wait_for(ledger.settled(i % 2, end), 10)
            took = time.monotonic() - started
            assert took < PROMPT_S, f"round {i}: {took:.2f}s"
            assert ledger.lookup(i % 2, ref) is not None
    finally:
        await producer.stop()
        await ledger.stop()

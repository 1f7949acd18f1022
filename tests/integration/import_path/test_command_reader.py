"""The commands topic's reader (real broker): a request is committed only once its run has
ended, so a reader stopped mid-run leaves it to the next; a revocation waits for the run;
and a group new to the topic starts where the Faust agent's group (``<app id>``) left off.

Why users care: a full import's request must be run again when its worker died, and run
once otherwise. The Faust agent this reader replaced sometimes never got the request a
restarted worker was assigned (faust#115), and that job was never tracked to its end."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from agents.imports.command_reader import CommandReader
from streams import kafka
from streams.settings import Settings
from tests.support.kafka import create_topics, produce
from tests.support.stack import wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.integration]


class Runs:
    """A dispatch that notes each request and can hold one until released."""

    def __init__(self, hold: str | None = None) -> None:
        self.seen: list[str] = []
        self.hold = hold
        self.release = asyncio.Event()

    async def __call__(self, value: Any) -> None:
        self.seen.append(value["request_id"])
        if value["request_id"] == self.hold:
            await self.release.wait()


async def setup(kafka_servers: str, requests: list[str]) -> tuple[Settings, str]:
    unique = uuid.uuid4().hex[:8]
    settings = Settings(broker=f"kafka://{kafka_servers}", app_id=f"commands-{unique}")
    topic = f"{settings.app_id}-commands"
    await create_topics(kafka_servers, [topic])
    await produce(kafka_servers, topic, [(b"full-import", {"request_id": r}) for r in requests])
    return settings, topic


async def committed(settings: Settings, group: str, topic: str) -> int | None:
    admin = kafka.admin_client(settings)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(topic, 0))
    return None if meta is None or meta.offset < 0 else meta.offset


async def test_a_request_cut_short_by_a_stop_runs_again_on_the_next_reader(
    kafka_servers: str,
) -> None:
    settings, topic = await setup(kafka_servers, ["r1", "r2", "r3"])
    first = Runs(hold="r2")
    reader = CommandReader(settings, topic, first)
    await reader.start()
    try:
        await wait_until(lambda: first.seen == ["r1", "r2"], timeout=60, what="r2 running")
        # r1 ended and is committed; r2 is running, so nothing after it is handed over.
        await committed_at(settings, reader, topic, 1)
    finally:
        await reader.stop()  # r2 cut short: not committed
    assert await committed(settings, reader.group_id, topic) == 1

    second = Runs()
    reader = CommandReader(settings, topic, second)
    await reader.start()
    try:
        await wait_until(lambda: second.seen == ["r2", "r3"], timeout=60, what="r2, r3 run")
        await committed_at(settings, reader, topic, 3)
    finally:
        await reader.stop()
    assert first.seen + second.seen == ["r1", "r2", "r2", "r3"]


async def test_a_revocation_waits_for_the_running_request_and_commits_it(
    kafka_servers: str,
) -> None:
    settings, topic = await setup(kafka_servers, ["r1"])
    runs = Runs(hold="r1")
    reader = CommandReader(settings, topic, runs)
    await reader.start()
    try:
        await wait_until(lambda: runs.seen == ["r1"], timeout=60, what="r1 running")
        release = asyncio.create_task(reader.release([TopicPartition(topic, 0)]))
        done, _ = await asyncio.wait({release}, timeout=1.0)
        assert not done, "the partition was given up while its request still ran"
        runs.release.set()
        await asyncio.wait_for(release, 30)
        # Committed by the revocation itself: the next owner does not run r1 again.
        assert await committed(settings, reader.group_id, topic) == 1
    finally:
        runs.release.set()
        await reader.stop()


async def test_a_new_group_starts_where_the_agents_group_left_off(kafka_servers: str) -> None:
    settings, topic = await setup(kafka_servers, ["old-1", "old-2", "new-1"])
    # The Faust agent (group <app id>) had run the first two before the upgrade.
    agent = kafka.group_consumer(settings, group_id=settings.app_id, enable_auto_commit=False)
    await agent.start()
    try:
        agent.assign([TopicPartition(topic, 0)])
        await agent.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "")})
    finally:
        await agent.stop()

    runs = Runs()
    reader = CommandReader(settings, topic, runs)
    await reader.start()
    try:
        await wait_until(lambda: runs.seen, timeout=60, what="a request run")
        await committed_at(settings, reader, topic, 3)
    finally:
        await reader.stop()
    assert runs.seen == ["new-1"]  # neither repeated nor skipped


async def committed_at(settings: Settings, reader: CommandReader, topic: str, offset: int) -> None:
    async def there() -> bool:
        return await committed(settings, reader.group_id, topic) == offset

    await wait_until(there, what=f"offset {offset} committed")

"""The commands topic's one reader in the cluster: full-import and reconcile requests run
one at a time, in order, and a request's offset is committed only once its run has
ended, so a worker that dies mid-run leaves the request to the next owner.

An owned consumer (group ``<app id>-commands``), not a Faust agent: twice in ~40 kill
loop rounds a restarted worker's agent was assigned the partition and never got the
redelivered request at offset 0 (Faust's first record after a rebalance dropped:
faust#115, faust-streaming#216), and the request's job was never tracked to its end.
Here the position is the group's committed offset and nothing else moves it.

A run can outlast aiokafka's poll interval (a full import of a big catalogue), after
which the member would be dropped from the group. So while a request runs its partition
is paused and the loop keeps polling; a revocation waits until the run has ended and
is committed, since the next owner would otherwise run the request a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from streams import topics
from streams.kafka import (
    FOLLOWER_FETCH_WAIT_MS,
    OwnerRebalance,
    fetch_or_wait,
    owned_group_consumer,
    resume_where_group_left,
)
from streams.settings import Settings

log = logging.getLogger(__name__)

Dispatch = Callable[[Any], Awaitable[None]]
# How often the loop polls (to stay in the group) while a request runs.
POLL_WHILE_RUNNING_S = 1.0


class CommandReader(Service):
    def __init__(self, settings: Settings, topic: str, dispatch: Dispatch, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings, self.topic, self.dispatch = settings, topic, dispatch
        self.group_id = topics.commands_group(settings)
        self._consumer: Any = None
        self._running: asyncio.Task[None] | None = None  # the request running now
        self._owed: tuple[TopicPartition, int] | None = None  # its commit, once it ends
        self._taken: set[TopicPartition] = set()  # assigned, and their position settled

    async def on_start(self) -> None:
        # The broker answers a held fetch as soon as a request arrives: a long hold only
        # makes an idle reader ask less often.
        self._consumer = owned_group_consumer(
            self.settings, self.group_id, fetch_max_wait_ms=FOLLOWER_FETCH_WAIT_MS
        )
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=OwnerRebalance(self))

    async def on_stop(self) -> None:
        # A run cut short by the stop is not committed: the next owner runs it again (a
        # full import then finds its job in the ledger or in Norce's job list).
        self._owed = None
        if self._running is not None:
            self._running.cancel()
            with contextlib.suppress(BaseException):
                await self._running
        if self._consumer is not None:
            await self._consumer.stop()

    # -- rebalance ----------------------------------------------------------------

    async def take(self, assigned: list[TopicPartition]) -> None:
        # A group new to the topic starts where the Faust agent that read it before
        # (group ``<app id>``) left off: an upgrade neither repeats nor skips a request.
        seeks = await resume_where_group_left(
            self.settings, self._consumer, assigned, self.settings.app_id
        )
        for tp, offset in seeks.items():
            log.info("commands %s: resuming at %d (the agent's group)", tp, offset)
        self._taken.update(assigned)

    async def release(self, revoked: list[TopicPartition]) -> None:
        run = self._running
        if run is not None and not run.done():
            log.info("commands partition revoked: waiting for the running request to end")
            with contextlib.suppress(BaseException):
                await asyncio.shield(run)
        await self._commit_owed()
        self._taken.difference_update(revoked)

    # -- the loop -----------------------------------------------------------------

    @Service.task
    async def _read_commands(self) -> None:
        while not self.should_stop:
            batch = await fetch_or_wait(
                self._consumer, "commands", max_records=1, timeout_ms=FOLLOWER_FETCH_WAIT_MS
            )
            for tp, records in batch.items():
                if tp not in self._taken:
                    # Fetched while ``take`` still looked for where to start: again later.
                    if tp in self._consumer.assignment():
                        self._consumer.seek(tp, records[0].offset)
                    continue
                for record in records:
                    await self._handle(tp, record)

    async def _handle(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        self._consumer.pause(tp)  # nothing more of it until this request is done
        self._owed = (tp, record.offset + 1)
        self._running = asyncio.create_task(self._dispatch(record))
        try:
            while not self._running.done():
                await asyncio.wait({self._running}, timeout=POLL_WHILE_RUNNING_S)
                if not self._running.done():
                    await self._consumer.getmany(timeout_ms=0)  # stays in the group
            await self._commit_owed()
        finally:
            self._running = None
            if tp in self._consumer.assignment():
                self._consumer.resume(tp)

    async def _dispatch(self, record: ConsumerRecord) -> None:
        try:
            value = orjson.loads(record.value) if record.value is not None else None
        except orjson.JSONDecodeError as error:
            log.error("command at offset %d ignored, not JSON: %s", record.offset, error)
            return
        try:
            await self.dispatch(value)
        except Exception:  # logged and passed: one bad request must not block the rest
            log.exception("command at offset %d failed", record.offset)

    async def _commit_owed(self) -> None:
        owed, self._owed = self._owed, None
        if owed is None:
            return
        tp, offset = owed
        try:
            await self._consumer.commit({tp: OffsetAndMetadata(offset, "")})
        except (KafkaError, AssertionError) as error:
            # The next owner runs the request again; a full import finds its job first.
            log.warning("commands offset %d not committed: %s", offset, error)

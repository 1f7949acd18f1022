"""Exactly once per ClientOrderRef: received orders -> the orders topic and each target's
``out.<target>.order``.

The single owner of partition ``p`` of the received-orders topic (consumer group
``<app id>-orders``) is the only writer of partition ``p`` of the orders topic and of
every order target topic (records are produced to the same partition number). When it
takes a partition it reads which refs each of those partitions holds already; then for
each received record it produces only to the destinations that lack the ref, awaits the
broker's acks, and only then commits. A crash anywhere in between re-reads the record
and fills in what is missing, never writing a ref twice to a destination.

A second, different order under a ref the orders topic holds (two calls raced on two
workers, or a ref the receivers' bounded ledger had forgotten) is dead-lettered with
both versions and an ``ORDER CONFLICT`` error line; the first order stands.

Memory: the refs of the owned partitions (orders topic retention bounds them).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from agents.config.mapping import Mapper
from agents.orders.digest import DIGEST_HEADER, header, order_digest
from streams import metrics
from streams.kafka import (
    OwnerRebalance,
    consumer,
    fetch_or_wait,
    owned_group_consumer,
    partitions_of,
    read_record,
    send_acked,
    send_dead_letter,
)
from streams.kafka_reads import read_to_end
from streams.records import DeadLetter
from streams.settings import Settings

log = logging.getLogger(__name__)

forwarded_total = metrics.REGISTRY.counter(
    "norce_sync_orders_forwarded_total", "Orders produced per destination topic.", ["topic"]
)
conflicts_total = metrics.REGISTRY.counter(
    "norce_sync_orders_conflicts_total", "Different orders under a ref already received.", []
)


@dataclass(frozen=True)
class OrderTargetSpec:
    target: str
    topic: str
    mapper: Mapper


class OrdersFanout(Service):
    def __init__(
        self,
        app: Any,
        settings: Settings,
        received_topic: str,
        orders_topic: str,
        targets: list[OrderTargetSpec],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app, self.settings = app, settings
        self.received_topic, self.orders_topic, self.targets = received_topic, orders_topic, targets
        self.group_id = f"{settings.app_id}-orders"
        self._consumer: Any = None
        self._busy = asyncio.Lock()  # a batch in hand: a revocation waits for it
        # partition -> ref -> (digest, offset) on the orders topic
        self.canonical: dict[int, dict[str, tuple[str, int]]] = {}
        # target topic -> partition -> refs it holds
        self.seen: dict[str, dict[int, set[str]]] = {t.topic: {} for t in targets}
        self.forwarded = 0
        self.duplicates = 0
        self.conflicts = 0

    async def on_start(self) -> None:
        await self._check_partitions()
        self._consumer = owned_group_consumer(self.settings, self.group_id)
        await self._consumer.start()
        self._consumer.subscribe([self.received_topic], listener=OwnerRebalance(self))

    async def on_stop(self) -> None:
        if self._consumer is not None:
            async with self._busy:  # a batch in hand is produced (acked) first
                pass
            # Outside the lock: leaving the group can run a revocation (when another
            # member leaves or joins at the same moment), and ``release`` takes the lock.
            # Held here, stop and revocation waited for each other for good.
            await self._consumer.stop()

    async def _check_partitions(self) -> None:
        """Partition p of every destination is written by the owner of received partition
        p: a destination with fewer partitions (created by someone else) cannot work."""
        reader = consumer(self.settings)
        await reader.start()
        try:
            received = len(await partitions_of(reader, self.received_topic))
            for topic in (self.orders_topic, *(t.topic for t in self.targets)):
                count = len(await partitions_of(reader, topic))
                if count < received:
                    raise RuntimeError(
                        f"order topic {topic} has {count} partitions, fewer than the "
                        f"{received} of {self.received_topic}: give it at least as many"
                    )
        finally:
            await reader.stop()

    # -- rebalance ----------------------------------------------------------------

    async def take(self, assigned: list[TopicPartition]) -> None:
        # Under the lock: the fetcher may already return records of these partitions,
        # and the loop must not see them before their refs are loaded.
        async with self._busy:
            await self._load(assigned)

    async def _load(self, assigned: list[TopicPartition]) -> None:
        # All new partitions in one read per destination topic, not one per partition:
        # this runs inside the rebalance callback, where aiokafka sends no heartbeats, and
        # a fresh reader per partition (each its own client start-up) once took longer
        # than the session timeout: the member was dropped and rejoined, loading again,
        # every ~10 s for good.
        new = sorted(
            {
                tp.partition
                for tp in assigned
                if tp.topic == self.received_topic and tp.partition not in self.canonical
            }
        )
        if not new:
            return
        canonical: dict[int, dict[str, tuple[str, int]]] = {p: {} for p in new}
        for record in await self._read(self.orders_topic, new):
            if record.key is not None:
                canonical[record.partition].setdefault(
                    record.key.decode(), (header(record.headers) or "", record.offset)
                )
        for spec in self.targets:
            held: dict[int, set[str]] = {p: set() for p in new}
            for record in await self._read(spec.topic, new):
                if record.key is not None:
                    held[record.partition].add(record.key.decode())
            self.seen[spec.topic].update(held)
        self.canonical.update(canonical)

    async def release(self, revoked: list[TopicPartition]) -> None:
        async with self._busy:  # a batch in hand is produced (acked) first
            for tp in revoked:
                self.canonical.pop(tp.partition, None)
                for held in self.seen.values():
                    held.pop(tp.partition, None)

    async def _read(self, topic: str, partitions: list[int]) -> list[ConsumerRecord]:
        return [r async for r in read_to_end(self.settings, topic, partitions=partitions)]

    # -- the loop -----------------------------------------------------------------

    @Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            batch = await fetch_or_wait(self._consumer, "orders", max_records=500)
            if not batch:
                continue
            commits = {}
            async with self._busy:
                if self.should_stop:
                    break  # not forwarded, not committed: the next owner reads them
                for tp, records in batch.items():
                    if tp.partition not in self.canonical:
                        if tp in self._consumer.assignment():  # not loaded yet: again later
                            self._consumer.seek(tp, records[0].offset)
                        continue  # revoked meanwhile: the next owner reads them
                    await self._forward(tp.partition, records)
                    commits[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
            # Outside the lock: a commit waits for a rebalance in progress, and the
            # rebalance waits for ``release``, which takes the lock.
            if commits:
                try:
                    await self._consumer.commit(commits)
                except (KafkaError, AssertionError) as error:
                    log.info("orders commit skipped (read again, deduplicated): %s", error)

    async def _forward(self, p: int, records: list[ConsumerRecord]) -> None:
        canonical = self.canonical[p]
        sends: list[Any] = []
        planned: dict[str, str] = {}
        marks: list[tuple[str, str, str]] = []  # (topic, ref, digest)
        marked: set[tuple[str, str]] = set()
        for record in records:
            if record.key is None:
                continue
            ref = record.key.decode()
            try:
                document = orjson.loads(record.value)
            except orjson.JSONDecodeError as exc:  # the receiver validated it: a bug
                await self._letter(record, "order-forward", f"not JSON: {exc}")
                continue
            digest = header(record.headers) or order_digest(document)
            held = canonical.get(ref)
            first_digest = held[0] if held else planned.get(ref)
            if first_digest is None:
                planned[ref] = digest
                sends.append(self._send(self.orders_topic, p, record.key, record.value, digest))
                marks.append((self.orders_topic, ref, digest))
                marked.add((self.orders_topic, ref))
            elif first_digest != digest:
                await self._conflict(record, ref, held)
                continue
            else:
                self.duplicates += 1
            for spec in self.targets:
                held_refs = self.seen[spec.topic][p]
                if ref in held_refs or (spec.topic, ref) in marked:
                    continue
                try:
                    value = orjson.dumps(spec.mapper(document), option=orjson.OPT_SORT_KEYS)
                except Exception as exc:  # a mapping or hook error: this target only
                    await self._letter(record, "order-map", f"target {spec.target}: {exc}")
                    held_refs.add(ref)  # dead-lettered once, not on every re-read
                    continue
                sends.append(self._send(spec.topic, p, record.key, value, digest))
                marks.append((spec.topic, ref, digest))
                marked.add((spec.topic, ref))
        results = await asyncio.gather(*sends)
        for (topic, ref, digest), offset in zip(marks, results, strict=True):
            if topic == self.orders_topic:
                canonical.setdefault(ref, (digest, offset))
            else:
                self.seen[topic][p].add(ref)
            forwarded_total.inc(topic=topic)
        self.forwarded += len(marks)

    async def _send(self, topic: str, p: int, key: bytes, value: bytes, digest: str) -> int:
        headers = [(DIGEST_HEADER, digest.encode())]
        meta = await send_until_acked_at(self.app, topic, p, key, value, headers)
        return int(meta.offset)

    async def _conflict(
        self, record: ConsumerRecord, ref: str, held: tuple[str, int] | None
    ) -> None:
        self.conflicts += 1
        conflicts_total.inc()
        log.error(
            "ORDER CONFLICT: a different order under ClientOrderRef %r at %s/%d/%d; the first "
            "stands, both dead-lettered",
            ref,
            record.topic,
            record.partition,
            record.offset,
        )
        if held is not None:
            first = await read_record(self.settings, self.orders_topic, record.partition, held[1])
            await send_dead_letter(
                self.app,
                DeadLetter(
                    key=record.key,
                    value=first,
                    topic=self.orders_topic,
                    partition=record.partition,
                    offset=held[1],
                    stage="order-conflict",
                    reason="first version of a conflicting order",
                ),
                until_acked=True,
            )
        await self._letter(record, "order-conflict", "conflicting version (not forwarded)")

    async def _letter(self, record: ConsumerRecord, stage: str, reason: str) -> None:
        letter = DeadLetter.of(record, stage, reason)
        await send_dead_letter(self.app, letter, until_acked=True)

    def stats(self) -> dict[str, Any]:
        return {
            "group": self.group_id,
            "partitions": sorted(self.canonical),
            "orders": sum(len(c) for c in self.canonical.values()),
            "forwarded": self.forwarded,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
        }


async def send_until_acked_at(
    app: Any, topic: str, partition: int, key: bytes, value: bytes, headers: list[Any]
) -> Any:
    """``send_acked`` to one partition, retried until the broker has it (or the app stops)."""
    delay = 0.2
    while True:
        try:
            return await send_acked(app, topic, key, value, headers, partition=partition)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if app.should_stop:
                raise
            log.warning("produce to %s failed (%s); retrying in %.1fs", topic, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

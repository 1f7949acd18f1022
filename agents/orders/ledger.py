"""The receivers' ledger of order refs: every worker reads the whole received-orders
topic (all partitions, no consumer group) into ``ref -> (digest, offset)``.

Why every worker and not the partition owner: Norce calls whichever worker its load
balancer picks, and the answer (OK, or 409 for a different order under a known ref)
must be given in that call. Before answering, the receiver asks the broker for the end
offset of the ref's partition and waits until this ledger has read up to it
(:meth:`RefLedger.settled`): every call answered before (by any worker, before or after
a crash) is then known. Two calls of one ref in flight at the same moment on two
workers can both be written; the fan-out (:mod:`agents.orders.fanout`), the single
owner of each partition, keeps the first and dead-letters a different second one.

Memory: at most ``orders_ledger_per_partition`` refs per partition, the most recently
received; an older ref is still deduplicated by the fan-out.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, NamedTuple

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from mode import Service

from agents.orders.digest import header
from streams.kafka import FOLLOWER_FETCH_WAIT_MS, consumer, partitions_of
from streams.settings import Settings

log = logging.getLogger(__name__)


class Entry(NamedTuple):
    digest: str
    offset: int


class RefLedger(Service):
    def __init__(self, settings: Settings, topic: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.topic = topic
        self.limit = settings.orders_ledger_per_partition
        self.refs: dict[int, OrderedDict[str, Entry]] = {}
        self.position: dict[int, int] = {}
        # offsets this worker wrote and noted, not yet read back by the tail: a call need
        # not wait for the tail to read its own worker's orders
        self.own: dict[int, set[int]] = {}
        self._partitioner = DefaultPartitioner()
        self._moved = asyncio.Event()
        self._locks: dict[str, asyncio.Lock] = {}
        self._consumer: Any = None
        self._offsets: Any = None  # a second client for end offsets: no wait behind fetches
        self.ready = asyncio.Event()
        self._tps: list[TopicPartition] = []
        self._next_query: asyncio.Future[dict[int, int]] | None = None
        self._querier: asyncio.Future[None] | None = None

    # -- what the receiver asks -----------------------------------------------------

    async def partition_of(self, ref: str) -> int:
        """The ref's partition (the producer's default partitioner over all partitions),
        once this ledger knows the topic's partitions."""
        await self.ready.wait()
        return self.partition_for(ref)

    def partition_for(self, ref: str) -> int:
        partitions = sorted(self.refs)
        return int(self._partitioner(ref.encode(), partitions, partitions))

    def lookup(self, partition: int, ref: str) -> Entry | None:
        return self.refs[partition].get(ref)

    def note(self, partition: int, ref: str, digest: str, offset: int) -> None:
        """An order this worker wrote and the broker acknowledged."""
        self._put(partition, ref, Entry(digest, offset))
        if offset >= self.position.get(partition, 0):
            self.own.setdefault(partition, set()).add(offset)
            self._moved.set()  # a call waiting for this offset need not wait for the tail

    def lock(self, ref: str) -> _RefLock:
        return _RefLock(self._locks, ref)

    async def end_offset(self, partition: int) -> int:
        """The partition's end offset from a broker query started after this call.

        Calls coalesce: one ListOffsets for all partitions in flight at a time, and every
        call waiting meanwhile shares the next one (one query per call took over a second
        at p99 at 200 orders/s: aiokafka serialises them)."""
        await self.ready.wait()
        if self._next_query is None:
            self._next_query = asyncio.get_running_loop().create_future()
            if self._querier is None or self._querier.done():
                self._querier = asyncio.ensure_future(self._query_end_offsets())
        offsets = await asyncio.shield(self._next_query)
        return offsets[partition]

    async def _query_end_offsets(self) -> None:
        while self._next_query is not None:
            future, self._next_query = self._next_query, None
            try:
                ends = await self._offsets.end_offsets(self._tps)
            except Exception as exc:  # the callers answer 503
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning
                continue
            future.set_result({tp.partition: int(o) for tp, o in ends.items()})

    async def settled(self, partition: int, end: int) -> None:
        """Returns once this ledger knows every order below ``end`` (read by its tail, or
        written by this worker)."""
        while not self._known_up_to(partition, end):
            self._moved.clear()
            await self._moved.wait()

    def _known_up_to(self, partition: int, end: int) -> bool:
        """Every offset below ``end`` is read by the tail or was written by this worker."""
        position = self.position.get(partition, 0)
        if position >= end:
            return True
        own = self.own.get(partition, ())
        if end - position > len(own):
            return False
        return all(o in own for o in range(position, end))

    # -- lifecycle ------------------------------------------------------------------

    async def on_start(self) -> None:
        # The tail seeks only before it reads: the broker may hold its idle fetches long
        # (it answers as soon as an order arrives).
        self._consumer = consumer(self.settings, fetch_max_wait_ms=FOLLOWER_FETCH_WAIT_MS)
        self._offsets = consumer(self.settings)
        await self._consumer.start()
        await self._offsets.start()

    async def on_stop(self) -> None:
        for client in (self._consumer, self._offsets):
            if client is not None:
                await client.stop()

    @Service.task
    async def _run(self) -> None:
        c = self._consumer
        tps: list[TopicPartition] = []
        while not tps and not self.should_stop:
            tps = await partitions_of(c, self.topic)
            if not tps:
                await asyncio.sleep(0.5)
        c.assign(tps)
        self._tps = tps
        await c.seek_to_beginning(*tps)
        for tp in tps:
            self.refs[tp.partition] = OrderedDict()
            self.position[tp.partition] = 0
        self.ready.set()
        while not self.should_stop:
            try:
                # Returns as soon as orders arrive (a call's own write wakes its waiters
                # in ``note``); the timeout only paces an idle loop (was 50 ms: 20 passes
                # over every partition's position a second with nothing to read).
                batch = await c.getmany(timeout_ms=1000, max_records=5000)
            except KafkaError as error:
                log.warning("orders ledger fetch failed: %s", error)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batch.items():
                for record in records:
                    if record.key is None:
                        continue
                    digest = header(record.headers) or ""
                    self._put(tp.partition, record.key.decode(), Entry(digest, record.offset))
            for tp in tps:
                position = self.position[tp.partition] = await c.position(tp)
                own = self.own.get(tp.partition)
                if own:
                    own.difference_update([o for o in own if o < position])
            self._moved.set()

    def _put(self, partition: int, ref: str, entry: Entry) -> None:
        held = self.refs[partition]
        if ref in held:
            return  # the first version of a ref is the order; a later one is a conflict
        held[ref] = entry
        if len(held) > self.limit:
            held.popitem(last=False)

    def stats(self) -> dict[str, Any]:
        return {
            "partitions": len(self.refs),
            "refs": sum(len(h) for h in self.refs.values()),
            "read_to": dict(sorted(self.position.items())),
        }


class _RefLock:
    """One call per ref at a time on this worker (Norce's retry of a call still in
    flight waits for it, then finds the ref in the ledger)."""

    def __init__(self, locks: dict[str, asyncio.Lock], ref: str) -> None:
        self.locks, self.ref = locks, ref

    async def __aenter__(self) -> None:
        lock = self.locks.setdefault(self.ref, asyncio.Lock())
        await lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        lock = self.locks[self.ref]
        lock.release()
        if not lock.locked() and not lock._waiters:  # nobody else: forget it
            del self.locks[self.ref]

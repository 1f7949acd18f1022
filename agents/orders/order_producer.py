"""The receiver's own producer: an order's answer waits for its ack, so its produce must
not wait for anything else.

Not the app's producer: that one lingers 5 ms to batch the ingest path's changelog
writes, and an order's record would queue behind those batches. This one sends as soon
as a record is handed over (``linger_ms=0``), acks from all in-sync replicas, and tracks
only the received-orders topic from its start (its metadata refreshes never ask for
every topic of the cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from mode import Service

from streams.kafka import producer
from streams.settings import Settings


class OrderProducer(Service):
    def __init__(self, settings: Settings, topic: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings, self.topic = settings, topic
        self._producer: Any = None

    async def on_start(self) -> None:
        self._producer = producer(self.settings, linger_ms=0)
        await self._producer.start()
        self._producer.client.add_topic(self.topic)

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send_acked(
        self, key: bytes, value: bytes, headers: Iterable[tuple[str, bytes]], partition: int
    ) -> Any:
        """Produce one record to the received-orders topic and wait for its ack."""
        if self._producer is None:
            raise RuntimeError("the order producer is not started yet")
        future = await self._producer.send(
            self.topic, value, key=key, partition=partition, headers=list(headers)
        )
        # shield: the caller's timeout must not cancel the producer's delivery future
        return await asyncio.shield(future)

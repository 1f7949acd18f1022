"""The export path's operator view: consumer lag, backlog history, latency percentiles.

Every ``export_monitor_interval_s`` each worker samples

- the consumer lag of its consumer groups, for the whole group (committed offsets from
  the group coordinator against the partitions' end offsets, so whichever worker is asked
  answers the same): the events topic (``<app id>`` group: webhooks not yet enriched)
  and the input topics (``<app id>-projection`` group: change data not yet folded);
- its own enrichment backlog: events waiting in coalescing windows and events in a
  running flush (Query lookup and produce).

The samples of the last ``export_monitor_history`` intervals are kept for
``/export/stats`` (and the dashboard's chart); the lag is also a gauge on ``/metrics``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from streams.kafka import admin_client, consumer, partitions_of
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    at: float  # epoch seconds
    waiting: int  # events in coalescing windows (this worker)
    in_flush: int  # events being looked up and produced (this worker)
    events_lag: int | None  # the events topic, whole group (None: unknown)
    input_lag: int | None  # the input topics, whole projection group
    records_out: int  # target records produced so far (this worker)


def lag_by_topic(
    committed: Mapping[TopicPartition, int | None], ends: Mapping[TopicPartition, int]
) -> dict[str, int]:
    """Records not yet committed per topic; a partition never committed counts whole
    (the group starts at the earliest offset)."""
    lag: dict[str, int] = {}
    for tp, end in ends.items():
        done = committed.get(tp)
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - (done if done is not None else 0))
    return lag


class LagReader:
    """Group-wide consumer lag through the admin API (one short-lived client pair)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = admin_client(self.settings)
            await admin.start()
            reader = consumer(self.settings)
            await reader.start()
            self._admin, self._consumer = admin, reader
        return self._admin, self._consumer

    async def lag(self, group: str, topics: Iterable[str]) -> dict[str, int]:
        admin, consumer = await self._clients()
        tps: list[TopicPartition] = []
        for topic in topics:
            tps += await partitions_of(consumer, topic)
        if not tps:
            return {}
        ends = await consumer.end_offsets(tps)
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        committed = {tp: (o.offset if o.offset >= 0 else None) for tp, o in offsets.items()}
        return lag_by_topic(committed, ends)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._consumer = None


class History:
    """The last ``size`` samples, oldest first."""

    def __init__(self, size: int) -> None:
        self.samples: deque[Sample] = deque(maxlen=size)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def view(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.samples]


class LatencyWindow:
    """End-to-end latencies of the last ``size`` records, for percentiles on the stats
    view (``/metrics`` has the histogram for Prometheus' own quantiles)."""

    def __init__(self, size: int = 2048) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def percentiles(self, qs: Sequence[float] = (50, 95, 99)) -> dict[str, float | None]:
        ordered = sorted(self._values)
        out: dict[str, float | None] = {}
        for q in qs:
            if not ordered:
                out[f"p{q:g}_ms"] = None
                continue
            index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
            out[f"p{q:g}_ms"] = round(ordered[index] * 1000, 1)
        return out

"""One export monitor sample every ``export_monitor_interval_s``: this worker's backlog
(waiting and in-flush events, also gauges) and the group-wide consumer lag of the
events topic and of the import projection's input topics (:mod:`agents.export.monitor`).
The samples go to the enricher's history, which ``/export/stats`` shows."""

from __future__ import annotations

import logging
import time

from agents.export.enricher import Enricher
from agents.export.export_metrics import consumer_lag, in_flush_events, waiting_events
from agents.export.monitor import LagReader, Sample
from streams.settings import Settings
from streams.topics import projection_group

log = logging.getLogger(__name__)


class ExportSampler:
    def __init__(
        self,
        settings: Settings,
        enricher: Enricher,
        *,
        events_group: str,
        events_topic: str,
        input_topics: list[str],
    ) -> None:
        self.enricher = enricher
        self.events_group = events_group
        self.groups = {
            events_group: [events_topic],
            # The import projection's group reads the config's input topics.
            projection_group(settings): sorted(input_topics),
        }
        self.lag_reader = LagReader(settings)

    async def sample(self) -> Sample:
        """One backlog and lag sample (also sets the gauges)."""
        c = self.enricher.coalescer
        waiting_events.set(c.pending - c.in_flush)
        in_flush_events.set(c.in_flush)
        events_lag = input_lag = None
        try:
            for group, topics in self.groups.items():
                lag = await self.lag_reader.lag(group, topics)
                for topic, n in lag.items():
                    consumer_lag.set(n, group=group, topic=topic)
                total = sum(lag.values()) if lag else None
                if group == self.events_group:
                    events_lag = total
                else:
                    input_lag = total
        except Exception as exc:  # the broker may be away: the sample says "unknown"
            log.warning("consumer lag not read: %s", exc)
            await self.lag_reader.close()
        sample = Sample(time.time(), c.pending - c.in_flush, c.in_flush, events_lag, input_lag,
                        self.enricher.records_out)  # fmt: skip
        self.enricher.history.add(sample)
        return sample

    async def tick(self) -> None:
        # The timer's body: its return value is of no use there.
        await self.sample()

"""The export flow's topics, from the settings and the sync config: the events topic the
intake writes and the reader reads, the digests changelog, and the target topics.

:class:`TopicsReady` is what the intake and the reader wait on before their first use:
free once the worker made its own topics ready at start (it registers these), and it
declares them itself for an app that did not (a producer-only app, a test)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from agents.config.sync_config import SyncConfig
from agents.export.targets import SUPPORTED_KINDS, TargetSpec, target_specs
from streams.kafka import TopicSpec, declare_and_confirm
from streams.settings import Settings
from streams.topics import norce_events_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportTopics:
    specs: dict[str, list[TargetSpec]]  # per entity kind, the targets that want it
    events: TopicSpec  # webhooks, keyed <kind>:<id>
    digests: TopicSpec  # last produced digest per target topic, by entity key
    targets: list[TopicSpec]

    @classmethod
    def of(cls, settings: Settings, config: SyncConfig) -> ExportTopics:
        specs = target_specs(config, settings.export_topic_prefix)
        for kind in specs:
            if kind not in SUPPORTED_KINDS:
                log.error(
                    "export targets of kind %r are not fed (supported: %s)", kind, SUPPORTED_KINDS
                )

        spec = functools.partial(TopicSpec.of, settings)
        return cls(
            specs=specs,
            events=spec(norce_events_topic(settings)),
            # Compacted, partitioned like the events topic. The name is the one Faust gave
            # the "export-digests" table's changelog before the reader kept them, so
            # digests carry over.
            digests=spec(f"{settings.app_id}-export-digests-changelog", compacted=True),
            # One current record per key is the target topics' contract: compacted.
            targets=[
                spec(s.topic, compacted=True) for per_kind in specs.values() for s in per_kind
            ],
        )

    @property
    def all(self) -> list[TopicSpec]:
        return [self.events, self.digests, *self.targets]


class TopicsReady:
    """Makes the export topics exist once; free after that (and when the worker's start
    made them ready: ``own_names`` lists what it did)."""

    def __init__(
        self,
        settings: Settings,
        topics: ExportTopics,
        own_names: Callable[[], frozenset[str]],
        should_stop: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.topics = topics
        self._own_names = own_names
        self._should_stop = should_stop
        self._ready = False
        self._lock = asyncio.Lock()

    async def ensure(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            specs = self.topics.all
            if not {s.name for s in specs} <= self._own_names():
                await declare_and_confirm(self.settings, specs, should_stop=self._should_stop)
            self._ready = True

"""The jobs ledger as one object: its events topic, the ``jobs`` table the tracker folds
them into, and this worker's mirror of that table's changelog, which every worker reads
to see every open job before it submits. (A Faust GlobalTable would be the idiom, but in
faust-streaming 0.15 its copies on other workers stop updating: faust-streaming/faust#283.)

What delta and full imports share: appending an event, and the gate that keeps two jobs
with the same keys from running at once (``open_jobs``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from agents.imports.jobs import JobRecord
from streams.kafka_reads import TopicMirror
from streams.messages import JobEvent

# The table's acknowledged changelog write: (changelog topic, key, value or None).
StoreWrite = Callable[[str, bytes, bytes | None], Awaitable[None]]


class JobLedger:
    def __init__(self, events: Any, table: Any, write: StoreWrite) -> None:
        self.events = events  # the Faust job-events topic, keyed by batch id
        self.table = table  # the ``jobs`` Faust table (one partition), batch id -> record
        self._write = write
        self.mirror: TopicMirror[JobRecord] = TopicMirror(
            table.changelog_topic.get_topic_name(), JobRecord.model_validate_json
        )

    async def record(self, event: JobEvent) -> None:
        """Append an event and wait for the broker's acknowledgement, so the crash-safe
        order (intent -> POST -> JobId) holds on disk, not only in memory."""
        # The topic's orjson codec writes the record as its JSON (``Record.to_bytes``'s shape).
        future = await self.events.send(key=event.batch_id.encode(), value=event)
        await future

    def records(self) -> list[JobRecord]:
        """Every job of the cluster, as this worker's mirror of the jobs changelog has them."""
        return list(self.mirror.values.values())

    def open_jobs(self, source: str, kind: str) -> list[JobRecord]:
        """Jobs of this (source, kind) that may still write to Norce. While one is open no
        new job for the pair is submitted: Norce runs jobs in parallel, so a newer job
        could finish first and the older one would then overwrite newer values."""
        return [
            r
            for r in self.records()
            if r.source == source and r.kind == kind and r.blocks_submissions
        ]

    def caught_up(self) -> bool:
        """True once the mirror has read the ledger written before this worker started."""
        return self.mirror.caught_up.is_set()

    # The tracker's side (the one owner of the events topic's single partition).

    def get(self, key: bytes) -> dict[str, Any] | None:
        return self.table.get(key)  # type: ignore[no-any-return]

    def __contains__(self, key: bytes) -> bool:
        return key in self.table

    async def store(self, key: bytes, value: dict[str, Any] | None) -> None:
        """The ledger's write, acknowledged before the agent moves on (issue 23, item 9).

        ``jobs[key] = value`` only queues the changelog record in Faust's producer buffer,
        and Faust may commit the job event's offset before it is sent
        (docs/design-notes.md, "Why not a Faust agent"): a SIGKILL then loses a ``posted``
        for good. So the record goes to the changelog here and is awaited; only then is
        the local table written, directly (``table.data``, which sends nothing). The event
        is acknowledged when the agent takes the next one, after this returned."""
        changelog = self.table.changelog_topic.get_topic_name()
        payload = None if value is None else orjson.dumps(value)
        await self._write(changelog, key, payload)
        if value is None:
            self.table.data.pop(key, None)
        else:
            self.table.data[key] = value

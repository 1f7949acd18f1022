"""Reads the ops views and commands need beyond :mod:`streams.kafka_reads`: the jobs
ledger as its changelog holds it, and the dead-letter counts every worker keeps."""

from __future__ import annotations

import orjson
from aiokafka import ConsumerRecord

from agents.imports.jobs import JobRecord
from agents.ops.queries import DlqAggregate
from streams.kafka_reads import follow_topic, read_to_end
from streams.settings import Settings


async def read_jobs(settings: Settings, changelog_topic: str) -> list[JobRecord]:
    """The jobs table as its changelog holds it: the last value per batch id."""
    latest: dict[bytes, bytes | None] = {}
    async for record in read_to_end(settings, changelog_topic):
        latest[record.key] = record.value
    jobs = []
    for value in latest.values():
        if value is not None:  # a tombstone: the job was removed from the table
            jobs.append(JobRecord.model_validate(orjson.loads(value)))
    return jobs


async def tail_dead_letters(settings: Settings, aggregate: DlqAggregate) -> None:
    """Feed ``aggregate`` from the dead-letter topic's beginning, forever. Every worker
    runs one: the view then answers for the whole topic on any worker, with no group
    coordination, and a restart rebuilds the counts exactly from the topic."""

    def add(record: ConsumerRecord) -> None:
        aggregate.add(record.value, record.offset)

    await follow_topic(settings, settings.dlq_topic, add, {})

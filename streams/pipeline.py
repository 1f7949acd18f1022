"""The import path's topics and tables, declared once on the service app.

- ``changes``: mapped changes and pending-table commands keyed by ``source|kind|key``;
  the ``state`` and ``pending`` tables are partitioned like it.
- ``job_events``: the jobs ledger's events, keyed by batch id; folded into ``jobs`` by the
  one worker that owns its single partition. Every worker mirrors the ``jobs`` changelog
  (``job_ledger``) to see every open job before it submits. (A Faust GlobalTable would
  be the idiom, but in faust-streaming 0.15 its copies on other workers stop updating:
  faust-streaming/faust#283.)
- ``batches``: one record per submission intent holding its keys and versions.
- ``dlq``: dead letters (``streams.records.DeadLetter``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agents.config.runtime import sync_config
from agents.imports.jobs import JobRecord
from agents.ops.kafka_reads import TopicMirror
from streams import topics
from streams.main import app, settings

log = logging.getLogger(__name__)
config = sync_config(settings)
partitions = settings.topic_partitions

# Large enough for the keys of a 10,000-item batch.
BIG_MESSAGES = {"max.message.bytes": str(16 * 1024 * 1024)}

job_events = app.topic(
    topics.job_events_topic(settings), internal=True, partitions=1, config=BIG_MESSAGES
)
batches = app.topic(
    topics.batches_topic(settings), internal=True, partitions=1, config=BIG_MESSAGES
)
commands = app.topic(topics.commands_topic(settings), internal=True, partitions=1)
dlq = app.topic(
    settings.dlq_topic, internal=True, partitions=1, key_serializer="raw", value_serializer="raw"
)

# Keys are bytes everywhere (the raw key codec), so a key read back from a changelog
# equals the one written.
jobs = app.Table("jobs", partitions=1, key_type=bytes)
job_ledger = TopicMirror(jobs.changelog_topic.get_topic_name(), JobRecord.model_validate_json)


@app.task
async def follow_job_ledger() -> None:
    await job_ledger.follow(settings)


def job_ledger_caught_up() -> bool:
    """True once the mirror has read the ledger written before this worker started."""
    return job_ledger.caught_up.is_set()


async def declare(*channels: Any, patience_s: float = 120.0) -> None:
    """Create topics when missing. A broker that has just started can refuse for a moment
    (KRaft: "all brokers are currently fenced"), or be away: retry, and never let this
    crash the worker (a worker that stops meanwhile just stops trying)."""
    deadline = time.monotonic() + patience_s
    for channel in channels:
        while not app.should_stop:
            try:
                await channel.maybe_declare()
                break
            except Exception as error:
                if app.should_stop:
                    return
                if time.monotonic() > deadline:
                    log.error("could not create %s: %s", channel, error)
                    break
                log.warning("creating %s failed, retrying: %s", channel, error)
                await asyncio.sleep(1.0)


@app.task
async def declare_topics() -> None:
    """Create the topics no agent consumes (Faust declares only agents' channels)."""
    await declare(batches, dlq)

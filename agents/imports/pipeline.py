"""The import path's topics and tables, declared once on the service app.

- the input topics (created when ``create_input_topics`` is on); the projection
  (``agents.imports.projector``) declares their state changelogs and command topics
  itself, since their partition counts follow the input topics'.
- ``job_events``: the jobs ledger's events, keyed by batch id; folded into ``jobs`` by the
  one worker that owns its single partition. Every worker mirrors the ``jobs`` changelog
  (``job_ledger``) to see every open job before it submits. (A Faust GlobalTable would
  be the idiom, but in faust-streaming 0.15 its copies on other workers stop updating:
  faust-streaming/faust#283.)
- ``batches``: one record per submission intent holding its keys and versions.
- ``dlq``: dead letters (``streams.records.DeadLetter``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from agents.config.runtime import sync_config
from agents.imports.jobs import JobRecord
from streams import topics
from streams.kafka import TopicSpec
from streams.kafka_reads import TopicMirror
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
# Handlers of the other command types on ``commands`` (``streams.messages.Command``), by
# their ``type``: a flow above this one registers its own (reconcile). One topic, one
# owner: a reconcile and a full import never overlap.
command_handlers: dict[str, Callable[[Any], Awaitable[None]]] = {}
# Dead letters carry at most DEAD_LETTER_MAX_BYTES of the original (base64: +1/3): set
# explicitly rather than inherit a broker default a letter might exceed.
dlq = app.topic(
    settings.dlq_topic,
    internal=True,
    partitions=1,
    key_serializer="raw",
    value_serializer="raw",
    config={"max.message.bytes": str(4 * 1024 * 1024)},
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


# Written but consumed by no agent, so Faust would not create them: the worker creates
# and confirms them at start with the agents' topics and the tables' changelogs.
app.register_topics(batches, dlq)
if settings.create_input_topics:
    # Created only when missing: an existing input topic (Debezium's) is left as it is.
    app.register_topics(
        *(
            TopicSpec(topic, settings.topic_partitions, replicas=settings.topic_replication_factor)
            for topic in config.topics
        )
    )

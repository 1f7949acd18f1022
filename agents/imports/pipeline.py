"""The import path's topics and table, declared on the app by :func:`declare`.

- the input topics (created when ``create_input_topics`` is on); the projection
  (``agents.imports.projector``) declares their state changelogs and command topics
  itself, since their partition counts follow the input topics'.
- ``job_events``: the jobs ledger's events, keyed by batch id; folded into ``jobs`` by the
  one worker that owns its single partition (``agents.imports.ledger``).
- ``batches``: one record per submission intent holding its keys and versions.
- ``commands``: full-import and reconcile requests (``agents.imports.command_topic``).
- ``dlq``: dead letters (``streams.records.DeadLetter``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.config.sync_config import SyncConfig
from streams import topics
from streams.kafka import TopicSpec
from streams.settings import Settings

# Large enough for the keys of a 10,000-item batch.
BIG_MESSAGES = {"max.message.bytes": str(16 * 1024 * 1024)}


@dataclass(frozen=True)
class ImportTopics:
    job_events: Any
    batches: Any
    commands: Any
    dlq: Any
    jobs: Any  # the ``jobs`` table


def declare(app: Any, settings: Settings, config: SyncConfig) -> ImportTopics:
    job_events = app.topic(
        topics.job_events_topic(settings), internal=True, partitions=1, config=BIG_MESSAGES
    )
    batches = app.topic(
        topics.batches_topic(settings), internal=True, partitions=1, config=BIG_MESSAGES
    )
    commands = app.topic(topics.commands_topic(settings), internal=True, partitions=1)
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
    # Consumed by no agent (the commands topic has a reader of its own), so Faust would
    # not create them: the worker creates and confirms them at start with the agents'
    # topics and the tables' changelogs.
    app.register_topics(batches, dlq, commands)
    if settings.create_input_topics:
        # Created only when missing: an existing input topic (Debezium's) is left as it is.
        app.register_topics(*(TopicSpec.of(settings, topic) for topic in config.topics))
    return ImportTopics(job_events, batches, commands, dlq, jobs)

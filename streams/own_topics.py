"""The topics a worker owns, made ready before it joins its consumer group.

Faust declares an agent's topic just before it subscribes, and the group leader assigns
partitions from whatever its metadata holds at that moment: on a broker where the topic
was created a moment before, the assignor logs "Ignoring missing topic" and the agent
never gets a partition. So the app (:class:`streams.app.ServiceApp`) creates every topic
it owns at start, before the consumer subscribes, and waits until the broker lists each
with all its partitions (:func:`streams.kafka.declare_and_confirm`).

Owned are: the internal topics agents read, the tables' changelogs, Faust's leader
topic, and whatever a module registers with ``app.register_topics`` (topics only
written, like the dead-letter and export target topics; and any new family, such as a
per-input state changelog). :class:`StrictAssignor` is the safety net: a topic of ours
missing at assignment anyway is created and the group rejoined, never ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import faust
from faust.assignor import PartitionAssignor
from faust.types import TopicT
from mode.utils.times import want_seconds

from streams.kafka import (
    TopicSpec,
    app_consumer,
    declare_and_confirm,
    refresh_metadata,
    request_rejoin,
)

log = logging.getLogger(__name__)

Registrable = TopicSpec | TopicT
_repairs: set[asyncio.Future[None]] = set()  # running repairs (tasks need a reference)


def specs_of(channel: Any, app: faust.App) -> list[TopicSpec]:
    """Specs of a Faust topic (one per name); nothing for an in-memory channel or a
    topic Faust would not create (``internal=False``: an input owned by Debezium)."""
    if not isinstance(channel, TopicT) or not channel.internal:
        return []
    config: dict[str, str] = {str(k): str(v) for k, v in (channel.config or {}).items()}
    policies = {
        p for p, on in (("compact", channel.compacting), ("delete", channel.deleting)) if on
    }
    if policies:
        config.setdefault("cleanup.policy", ",".join(sorted(policies)))
    if channel.retention:
        config.setdefault("retention.ms", str(int(want_seconds(channel.retention) * 1000)))
    return [
        TopicSpec(
            name=name,
            partitions=channel.partitions or app.conf.topic_partitions,
            config=config,
            replicas=channel.replicas or app.conf.topic_replication_factor,
        )
        for name in channel.topics
    ]


def collect(app: faust.App, registered: Iterable[Registrable]) -> list[TopicSpec]:
    """Every topic the app owns, once each (the first spec of a name wins)."""
    found: list[TopicSpec] = []
    for item in registered:
        found += [item] if isinstance(item, TopicSpec) else specs_of(item, app)
    for agent in app.agents.values():
        found += specs_of(agent.channel, app)
    for table in app.tables.values():
        found += specs_of(table.changelog_topic, app)
    if not app.conf.topic_disable_leader:
        found += specs_of(app._leader_assignor._leader_topic, app)  # type: ignore[attr-defined]
    by_name: dict[str, TopicSpec] = {}
    for spec in found:
        by_name.setdefault(spec.name, spec)
    return list(by_name.values())


def missing_own_topics(cluster: Any, member_metadata: Any, own: Iterable[str]) -> list[str]:
    """Topics of ours the group subscribes to that the leader's metadata does not list."""
    subscribed = {t for m in member_metadata.values() for t in m.subscription}
    return sorted(t for t in subscribed & set(own) if not cluster.partitions_for_topic(t))


class StrictAssignor(PartitionAssignor):  # type: ignore[misc]
    """Faust's assignor, except that a topic of ours missing from the leader's metadata
    is not ignored: the assignment goes out (the group must not stall), the topic is
    created and confirmed, and the group rejoins so the next assignment includes it.
    When the topic cannot be made ready, the worker crashes rather than run without it."""

    def assign(self, cluster: Any, member_metadata: Any) -> Any:
        missing = missing_own_topics(
            cluster, member_metadata, getattr(self.app, "own_topic_names", ())
        )
        if missing:
            log.error(
                "own topics missing from the broker's metadata at assignment: %s; "
                "creating them and rejoining the group",
                ", ".join(missing),
            )
            # assign() runs in the consumer's event loop: so does the repair.
            task = asyncio.ensure_future(self._repair(missing))
            _repairs.add(task)
            task.add_done_callback(_repairs.discard)
        return super().assign(cluster, member_metadata)

    async def _repair(self, missing: list[str]) -> None:
        app = self.app
        try:
            specs = [s for s in app.own_topic_specs if s.name in missing]
            await declare_and_confirm(app.settings, specs, should_stop=lambda: app.should_stop)
            consumer = app_consumer(app)
            await refresh_metadata(consumer)
            request_rejoin(consumer)
        except Exception as error:
            log.critical("own topics %s not ready, stopping the worker: %s", missing, error)
            # The app's own loop, not this one (the consumer runs in a thread of its own).
            asyncio.run_coroutine_threadsafe(app.crash(error), app.loop)

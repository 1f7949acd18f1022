"""Which topics the worker owns and when the broker's metadata has them ready."""

from __future__ import annotations

from types import SimpleNamespace

from streams.kafka import TopicSpec, not_ready
from streams.own_topics import missing_own_topics


def test_a_topic_is_ready_when_every_partition_has_a_leader() -> None:
    described = [
        {"topic": "a", "error_code": 0, "partitions": [
            {"partition": 0, "leader": 1, "error_code": 0},
            {"partition": 1, "leader": 1, "error_code": 0},
        ]},
        {"topic": "b", "error_code": 0, "partitions": [
            {"partition": 0, "leader": -1, "error_code": 5},
        ]},
        {"topic": "c", "error_code": 3, "partitions": []},
        {"topic": "d", "error_code": 0, "partitions": []},
        {"topic": "not-ours", "error_code": 0, "partitions": []},
    ]  # fmt: skip
    assert not_ready(described, ["a", "b", "c", "d", "e"]) == {
        "b": "partitions without a leader: [0]",
        "c": "metadata error 3",
        "d": "no partitions yet",
        "e": "not in metadata",
    }


def test_a_compacted_spec_asks_for_compaction() -> None:
    new = TopicSpec("t", 4, compacted=True, config={"max.message.bytes": "1"}).new_topic()
    assert (new.name, new.num_partitions, new.replication_factor) == ("t", 4, 1)
    assert new.topic_configs == {"max.message.bytes": "1", "cleanup.policy": "compact"}
    assert TopicSpec("u", 1).new_topic().topic_configs == {}


def test_the_assignor_sees_own_topics_missing_from_metadata_only() -> None:
    cluster = SimpleNamespace(partitions_for_topic={"app-changes": {0, 1}}.get)
    members = {
        "m1": SimpleNamespace(subscription=["app-changes", "app-job-events", "erp.prices"]),
        "m2": SimpleNamespace(subscription=["app-commands"]),
    }
    own = {"app-changes", "app-job-events", "app-commands", "app-unsubscribed"}
    assert missing_own_topics(cluster, members, own) == ["app-commands", "app-job-events"]

"""What the service needs from a Kafka cluster: its topics and the ACLs of its principal,
for a cluster where topics are not auto-created and access is denied by default.

``norce-sync topics`` prints the table; ``norce-sync topics --acl`` prints the
``kafka-acls.sh`` commands. Derived from the settings and the sync config, so it names
this deployment's topics, not an example's."""

from __future__ import annotations

from dataclasses import dataclass

from agents.config.sync_config import SyncConfig
from streams.settings import Settings


@dataclass(frozen=True)
class Grant:
    """Operations on one Kafka resource (``pattern`` is LITERAL or PREFIXED)."""

    resource: str  # topic, group, cluster
    pattern: str
    name: str
    operations: tuple[str, ...]
    why: str


OWN_TOPIC_OPS = ("Create", "Describe", "DescribeConfigs", "Read", "Write")


def required_access(settings: Settings, config: SyncConfig) -> list[Grant]:
    app = settings.app_id
    grants = [
        Grant(
            "topic",
            "PREFIXED",
            f"{app}-",
            OWN_TOPIC_OPS,
            "internal topics: table changelogs, projection state and commands, job events, "
            "batches, webhook events, export digests, ops backlog, Faust's leader topic",
        ),
        Grant(
            "topic",
            "LITERAL",
            settings.dlq_topic,
            ("Create", "Describe", "Read", "Write"),
            "dead letters (written by the worker, read by /dlq/ and `dlq replay`)",
        ),
    ]
    inputs = (
        ("Create", "Describe", "Read") if settings.create_input_topics else ("Describe", "Read")
    )
    for topic in sorted({b.topic for b in config.inputs}):
        grants.append(Grant("topic", "LITERAL", topic, inputs, "change data input (Debezium)"))
    if config.order_status_input is not None:
        topic = config.order_status_input.topic
        grants.append(Grant("topic", "LITERAL", topic, inputs, "ERP order statuses input"))
    targets = sorted(
        {
            settings.export_topic_prefix + config.target_topic(t, k)
            for t, k, _ in config.target_mappings()
        }
    )
    for topic in targets:
        grants.append(
            Grant("topic", "LITERAL", topic, ("Create", "Describe", "Write"), "export target")
        )
    grants.append(
        Grant(
            "group",
            "PREFIXED",
            app,
            ("Describe", "Read"),
            f"consumer groups {app}, {app}-projection, {app}-export, {app}-orders, {app}-commands",
        )
    )
    grants.append(
        Grant("cluster", "LITERAL", "kafka-cluster", ("Describe",), "metadata and lag views")
    )
    return grants


def acl_commands(grants: list[Grant], principal: str, bootstrap: str) -> list[str]:
    """One ``kafka-acls.sh --add`` per grant (Kafka's own CLI; managed services have
    their own consoles, but take the same resources and operations)."""
    lines = []
    for grant in grants:
        if grant.resource == "cluster":
            target = "--cluster"
        else:
            target = f"--{grant.resource} '{grant.name}' --resource-pattern-type {grant.pattern}"
        ops = " ".join(f"--operation {op}" for op in grant.operations)
        lines.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config client.properties "
            f"--add --allow-principal '{principal}' {target} {ops}"
        )
    return lines


def topics_table(grants: list[Grant]) -> list[tuple[str, str, str, str, str]]:
    return [(g.resource, g.pattern, g.name, ",".join(g.operations), g.why) for g in grants]

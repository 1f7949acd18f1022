"""`norce-sync topics --acl` covers every topic the worker creates, reads or writes: a
topic left out would be refused on a deny-by-default cluster. The worker's own list
(what it creates and confirms at start) is the reference, gathered as the worker does."""

from __future__ import annotations

from agents.ops.access import Grant, acl_commands, required_access
from streams import topics
from streams.own_topics import collect
from streams.settings import Settings


def covers(grants: list[Grant], topic: str, operation: str) -> bool:
    for g in grants:
        if g.resource != "topic" or operation not in g.operations:
            continue
        if (g.pattern == "LITERAL" and topic == g.name) or (
            g.pattern == "PREFIXED" and topic.startswith(g.name)
        ):
            return True
    return False


def test_every_topic_of_the_worker_is_granted() -> None:
    from norce_sync.worker import build

    worker = build(Settings())  # the worker as the command line builds it, not started
    app, settings, config = worker.app, worker.settings, worker.config
    grants = required_access(settings, config)
    own = {spec.name for spec in collect(app, app._registered)}
    assert own, "no topics collected"
    inputs = {b.topic for b in config.inputs}
    for input_topic in inputs:
        own |= {topics.state_topic(settings, input_topic)}
        own |= {topics.import_commands_topic(settings, input_topic)}
        # read, and created at start (create_input_topics), never written
        assert covers(grants, input_topic, "Read") and covers(grants, input_topic, "Create")
    if config.order_status_input is not None:  # the orders flow's input, read the same way
        status_input = config.order_status_input.topic
        assert covers(grants, status_input, "Read") and covers(grants, status_input, "Create")
        inputs.add(status_input)
    own -= inputs
    own.add(settings.dlq_topic)
    refused = sorted(
        t for t in own if not (covers(grants, t, "Write") and covers(grants, t, "Create"))
    )
    assert not refused, refused
    groups = [g for g in grants if g.resource == "group"]
    for group in (settings.app_id, f"{settings.app_id}-projection", f"{settings.app_id}-export"):
        assert any(group.startswith(g.name) and "Read" in g.operations for g in groups)


def test_acl_commands_name_the_principal_and_patterns() -> None:
    grants = [Grant("topic", "PREFIXED", "app-", ("Read", "Write"), "x")]
    [line] = acl_commands(grants, "User:svc", "b:9096")
    assert "--allow-principal 'User:svc'" in line
    assert "--topic 'app-' --resource-pattern-type PREFIXED" in line
    assert line.endswith("--operation Read --operation Write")

"""The import flow's ``install`` on an app that is never started: what it declares (the
names, topic settings and the page other parts and operators rely on) and that it
registers reconcile's command handler on the flow's own ``CommandTopic``."""

from __future__ import annotations

from pathlib import Path

from agents.config.runtime import NorceClients
from agents.config.sync_config import load_config
from agents.imports.wiring import install
from streams.app import create_app
from streams.messages import ReconcileRequest
from streams.settings import Settings
from tests.support.stack import write_config


async def test_install_declares_the_flow_on_the_app_it_is_given(tmp_path: Path) -> None:
    path, _ = write_config(tmp_path, "wiring")
    settings = Settings(  # type: ignore[call-arg]
        app_id="wiring", data_dir=tmp_path / "data", config_file=path, dlq_topic="dlq-w"
    )
    config = load_config(str(path))
    app = create_app(settings)
    clients = NorceClients(settings, config)
    flow = install(app, settings, config, clients)

    # The commands topic has a reader of its own (group <app>-commands), not an agent.
    assert sorted(app.agents) == ["agents.imports.tracker.track_jobs"]
    assert flow.command_reader.topic == "wiring-commands"
    assert flow.command_reader.group_id == "wiring-commands"
    assert flow.command_reader.dispatch == flow.full_imports.dispatch
    assert "/delta/{source}/{kind}" in app.web.views
    assert flow.clients is clients and flow.config is config
    events = flow.jobs.events
    assert events.get_topic_name() == "wiring-job-events" and events.partitions == 1
    assert events.config == {"max.message.bytes": str(16 * 1024 * 1024)}
    assert flow.jobs.table.name == "jobs" and flow.jobs.table.partitions == 1
    assert flow.commands.topic.partitions == 1
    registered = {t.get_topic_name() for t in app._registered if hasattr(t, "get_topic_name")}
    assert {"wiring-batches", "dlq-w", "wiring-commands"} <= registered
    # The services share one ledger, one reference cache and the root's clients.
    assert flow.delta.jobs is flow.jobs is flow.tracker.jobs is flow.full_imports.jobs
    assert flow.delta.references is flow.references is flow.full_imports.references
    assert flow.delta.projector is flow.projector
    assert not flow.jobs.caught_up() and flow.jobs.records() == []

    handled: list[ReconcileRequest] = []

    async def handler(request: ReconcileRequest) -> None:
        handled.append(request)

    flow.commands.register("reconcile", handler)
    request = ReconcileRequest(source="erp", kind="price", request_id="r", by="test")
    await flow.full_imports.dispatch(request.model_dump(mode="json"))
    assert [r.request_id for r in handled] == ["r"]

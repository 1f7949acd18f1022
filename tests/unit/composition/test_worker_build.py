"""The composition root builds the whole worker, and builds it again from scratch: every
service belongs to the build that made it (no module-level state), and the worker's
public surface (pages, agents, timers, commands topics) is pinned here, so a flow that
stops installing something is seen without starting a worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from norce_sync.worker import Worker, build
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def settings(tmp_path: Path, **more: object) -> Settings:
    return Settings(
        config_file=ROOT / "config" / "example.yaml",
        data_dir=tmp_path / "data",
        broker="kafka://127.0.0.1:1",  # never reached: nothing is started
        **more,
    )


def pages(worker: Worker) -> set[str]:
    # Faust views, and plain aiohttp routes on the same web server (the webhook intake's)
    routes = {r.canonical for r in worker.app.web.web_app.router.resources()}
    return set(worker.app.web.views) | routes


def test_build_installs_every_flow_on_the_app(tmp_path: Path) -> None:
    worker = build(settings(tmp_path, orders_receiver_enabled=True))
    assert {
        "/",
        "/health",
        "/ready",
        "/metrics",
        "/jobs/",
        "/jobs/{ident}",
        "/pending/",
        "/dlq/",
        "/items/{source}/{kind}/{key:.+}",
        "/delta/{source}/{kind}",
        "/reconcile/",
        "/reconcile/{source}/{kind}",
        "/export/stats",
        "/norce/events",
        "/norce/events/{event_type}",
        "/norce/orders",
        "/orders/",
    } <= pages(worker)
    agents = {agent.name.rsplit(".", 1)[-1] for agent in worker.app.agents.values()}
    assert agents, "no agent installed"
    topics = {spec.name for spec in worker.app._registered if hasattr(spec, "name")}
    assert worker.export.digests_topic.name in topics
    assert worker.app.ops_context.imports is worker.imports  # type: ignore[attr-defined]


def test_two_builds_share_no_service(tmp_path: Path) -> None:
    a = build(settings(tmp_path / "a"))
    b = build(settings(tmp_path / "b"))
    assert a.app is not b.app
    assert a.imports.projector is not b.imports.projector
    assert a.imports.jobs is not b.imports.jobs
    assert a.export.enricher is not b.export.enricher
    assert a.orders.receiver is not b.orders.receiver
    assert a.app.readiness is not b.app.readiness


def test_the_receiver_page_only_when_enabled(tmp_path: Path) -> None:
    worker = build(settings(tmp_path, orders_receiver_enabled=False))
    assert "/norce/orders" not in pages(worker)


def test_intake_processes_are_built_only_when_asked_for(tmp_path: Path) -> None:
    assert build(settings(tmp_path / "a")).intake_supervisor is None
    worker = build(settings(tmp_path / "b", intake_processes=2, intake_port=6099))
    assert worker.intake_supervisor is not None
    assert worker.intake_supervisor.count == 2
    # the worker's own web server keeps the intake's URLs either way
    assert {"/norce/events", "/norce/events/{event_type}"} <= pages(worker)


def test_the_intake_port_must_differ_from_the_web_port(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"intake_port .* must differ from web_port"):
        settings(tmp_path, intake_processes=1, intake_port=6066, web_port=6066)
    # without intake processes the intake port is not used, so it may be anything
    assert settings(tmp_path, intake_port=6066, web_port=6066).intake_processes == 0

"""The export flow's wiring (issue 18): importing its modules builds nothing, and
``install`` builds the flow on whatever app it is given (no Faust worker is started)."""

from __future__ import annotations

from pathlib import Path

from agents.config.sync_config import load_config
from agents.export.targets import target_specs
from agents.export.wiring import install
from streams.app import create_app
from streams.event_routes import EventRoutes
from streams.own_topics import collect
from streams.settings import Settings
from streams.topics import norce_events_topic

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "example.yaml"


def settings(tmp_path: Path, app_id: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        app_id=app_id,
        data_dir=tmp_path / app_id,
        config_file=EXAMPLE,
        export_topic_prefix="p.",
        topic_partitions=3,
    )


def test_install_builds_the_flow_on_the_app_it_is_given(tmp_path: Path) -> None:
    config = load_config(str(EXAMPLE))
    s = settings(tmp_path, "wiring-a")
    app = create_app(s)
    flow = install(app, s, config, EventRoutes())

    assert flow.specs == target_specs(config, "p.")
    assert flow.digests_topic.name == "wiring-a-export-digests-changelog"
    assert flow.digests_topic.compacted and flow.digests_topic.partitions == 3
    assert flow.reader.topic == norce_events_topic(s)
    assert flow.reader.changelog_topic == flow.digests_topic.name
    assert flow.enricher.reader is flow.reader
    # Every topic of the flow is created and confirmed with the worker's own at start.
    own = {spec.name: spec for spec in collect(app, app._registered)}
    targets = {t.topic for per_kind in flow.specs.values() for t in per_kind}
    assert {norce_events_topic(s), flow.digests_topic.name} | targets <= set(own)
    assert all(own[t].compacted for t in targets)
    # Faust views, and the intake's plain aiohttp routes on the same web server
    served = set(app.web.views) | {r.canonical for r in app.web.web_app.router.resources()}
    assert {"/norce/events/{event_type}", "/norce/events", "/export/stats"} <= served
    assert app.readiness.unprocessed() == []  # the reader's partitions, none yet

    # A second worker's flow shares nothing with the first (no module-level services).
    other_settings = settings(tmp_path, "wiring-b")
    other = install(create_app(other_settings), other_settings, config, EventRoutes())
    assert other.enricher is not flow.enricher and other.reader is not flow.reader
    assert other.digests_topic.name == "wiring-b-export-digests-changelog"

"""The order flow's wiring (issue 18): importing its modules builds nothing, and
``install`` builds the flow on whatever app it is given, registering its order events
on the routes it is handed (no Faust worker is started)."""

from __future__ import annotations

from pathlib import Path

from agents.config.runtime import NorceClients
from agents.config.sync_config import load_config
from agents.orders.wiring import install
from norce.orders import ORDER_EVENT_TYPES
from streams.app import create_app
from streams.event_routes import EventRoutes
from streams.own_topics import collect
from streams.settings import Settings
from tests.support.orders import status_topic, write_orders_config

ROOT = Path(__file__).resolve().parents[3]


def test_install_builds_the_flow_and_routes_its_order_events(tmp_path: Path) -> None:
    path = write_orders_config(tmp_path, "wiring")
    config = load_config(str(path))
    settings = Settings(  # type: ignore[call-arg]
        app_id="orders-wiring",
        data_dir=tmp_path / "data",
        config_file=path,
        export_topic_prefix="p.",
        orders_receiver_enabled=True,
    )
    app = create_app(settings)
    routes = EventRoutes()
    flow = install(app, settings, config, NorceClients(settings, config), routes)

    for event_type in ORDER_EVENT_TYPES:
        assert routes.handler_for(event_type) == flow.order_events.handle
    assert flow.event_topics == ["p.out.erp.order-events"]
    assert {t.target: t.topic for t in flow.targets} == {
        "erp": "p.out.erp.order",
        "wms": "p.out.wms.order",
    }
    assert flow.status_sender is not None
    own = {spec.name for spec in collect(app, app._registered)}
    assert {flow.received_topic, flow.orders_topic, *flow.event_topics} <= own
    assert {"p.out.erp.order", "p.out.wms.order", status_topic("wiring")} <= own
    assert {"/norce/orders", "/orders/"} <= set(app.web.views)
    stats = flow.stats()
    assert stats["topics"] == {"received": flow.received_topic, "orders": flow.orders_topic}
    assert stats["statuses"] is not None

    # Without event targets the order events stay unknown types on the routes.
    (tmp_path / "bare").mkdir()
    bare = load_config(str(write_orders_config(tmp_path / "bare", "bare", event_targets=())))
    other_routes = EventRoutes()
    install(create_app(settings), settings, bare, NorceClients(settings, bare), other_routes)
    assert other_routes.handler_for(ORDER_EVENT_TYPES[0]) is None

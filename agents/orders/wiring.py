"""The order flow on the service's app: its topics (created and confirmed at start with
the worker's others), the receivers' ledger and the fan-out as runtime services, and the
``POST /norce/orders`` page."""

from __future__ import annotations

import logging

from aiohttp import web
from faust.web import Request, Response, View

from agents.config.runtime import NorceClients, sync_config
from agents.orders.fanout import OrdersFanout, OrderTargetSpec
from agents.orders.ledger import RefLedger
from agents.orders.order_events import OrderEvents
from agents.orders.order_producer import OrderProducer
from agents.orders.receiver import OrderReceiver
from agents.orders.status import StatusSender
from norce.orders import ORDER_EVENT_TYPES
from streams import event_routes
from streams.kafka import TopicSpec
from streams.main import app, settings
from streams.topics import order_status_sent_topic, orders_received_topic, orders_topic

log = logging.getLogger(__name__)
_config = sync_config(settings).orders
_status_input = sync_config(settings).order_status_input
_prefix = settings.export_topic_prefix


def _spec(name: str, *, compacted: bool = False) -> TopicSpec:
    return TopicSpec(
        name,
        settings.topic_partitions,
        compacted=compacted,
        replicas=settings.topic_replication_factor,
    )


# Every topic the fan-out writes has the received topic's partitions: partition p of each
# is written by the one owner of received partition p (agents/orders/fanout.py).
RECEIVED = _spec(orders_received_topic(settings))
ORDERS = _spec(orders_topic(settings))
TARGETS = [
    OrderTargetSpec(name, _prefix + _config.order_topic(name), target.mapper())
    for name, target in _config.targets.items()
]
EVENT_TOPICS = [_spec(_prefix + _config.events_topic(name)) for name in _config.event_targets]

ledger = RefLedger(settings, RECEIVED.name)
fanout = OrdersFanout(app, settings, RECEIVED.name, ORDERS.name, TARGETS)
order_producer = OrderProducer(settings, RECEIVED.name)
receiver = OrderReceiver(app, settings, ledger, RECEIVED.name, order_producer)
order_events = OrderEvents(app, [t.name for t in EVENT_TOPICS], settings.webhook_ack_timeout_s)
if EVENT_TOPICS:  # without an event target, order events stay unknown types (404)
    app.register_topics(*EVENT_TOPICS)
    event_routes.register(ORDER_EVENT_TYPES, order_events.handle)

status_sender: StatusSender | None = None
if _status_input is not None:
    _source = _status_input.source
    _clients = NorceClients(settings, sync_config(settings))
    SENT = _spec(order_status_sent_topic(settings), compacted=True)
    status_sender = StatusSender(
        app,
        settings,
        _status_input,
        lambda: _clients.for_source(_source),
        sync_config(settings).sources[_source].account_id,
        SENT.name,
    )
    app.register_topics(SENT)
    if settings.create_input_topics:
        app.register_topics(_spec(_status_input.topic))

    @app.task
    async def start_status_sender() -> None:
        assert status_sender is not None
        for warning in sync_config(settings).deprecations:
            log.warning("config: %s", warning)
        await app.add_runtime_dependency(status_sender)


if settings.orders_receiver_enabled:
    app.register_topics(RECEIVED, ORDERS, *(_spec(t.topic) for t in TARGETS))

    @app.task
    async def start_orders() -> None:
        await app.add_runtime_dependency(order_producer)
        await app.add_runtime_dependency(ledger)
        await app.add_runtime_dependency(fanout)

    @app.page("/norce/orders")
    class Orders(View):
        async def post(self, request: Request) -> Response:
            web_request: web.Request = request  # type: ignore[assignment]
            return await receiver.handle(web_request)  # type: ignore[return-value]


@app.page("/orders/")
class OrdersView(View):
    async def get(self, request: Request) -> Response:
        return self.json(orders_stats())


def orders_stats() -> dict[str, object]:
    return {
        "enabled": settings.orders_receiver_enabled,
        "answer_ms": receiver.latency_ms(),
        "received": dict(sorted(receiver.counts.items())),
        "events": dict(sorted(order_events.counts.items())),
        "ledger": ledger.stats(),
        "fanout": fanout.stats(),
        "statuses": status_sender.stats() if status_sender is not None else None,
        "topics": {"received": RECEIVED.name, "orders": ORDERS.name},
        "targets": {t.target: t.topic for t in TARGETS},
    }

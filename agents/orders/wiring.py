"""The order flow on the service's app: its topics (created and confirmed at start with
the worker's others), the receivers' ledger and the fan-out as runtime services, the
``POST /norce/orders`` and ``GET /orders/`` pages, the order events' direct route from
the webhook intake, and the status sender back to Norce. :func:`install` builds it all
with what it needs passed in; the composition root (``norce_sync.worker``) calls it."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import faust
from aiohttp import web
from faust.web import Request, Response, View

from agents.config.runtime import NorceClients
from agents.config.sync_config import SyncConfig
from agents.orders.fanout import OrdersFanout, OrderTargetSpec
from agents.orders.ledger import RefLedger
from agents.orders.order_events import OrderEvents, Send
from agents.orders.order_producer import OrderProducer
from agents.orders.receiver import OrderReceiver
from agents.orders.status import StatusSender
from norce.orders import ORDER_EVENT_TYPES
from streams.app import ServiceApp
from streams.event_routes import EventRoutes
from streams.kafka import TopicSpec, send_acked
from streams.settings import Settings
from streams.topics import order_status_sent_topic, orders_received_topic, orders_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrdersFlow:
    """The order flow's public services and topics (what the ops views read)."""

    settings: Settings
    ledger: RefLedger
    fanout: OrdersFanout
    order_producer: OrderProducer
    receiver: OrderReceiver
    order_events: OrderEvents
    status_sender: StatusSender | None
    received_topic: str
    orders_topic: str
    targets: list[OrderTargetSpec]  # per order target, its topic and mapper
    event_topics: list[str]  # out.<target>.order-events

    def stats(self) -> dict[str, Any]:
        """What ``GET /orders/`` answers."""
        return {
            "enabled": self.settings.orders_receiver_enabled,
            "answer_ms": self.receiver.latency_ms(),
            "received": dict(sorted(self.receiver.counts.items())),
            "events": dict(sorted(self.order_events.counts.items())),
            "ledger": self.ledger.stats(),
            "fanout": self.fanout.stats(),
            "statuses": self.status_sender.stats() if self.status_sender is not None else None,
            "topics": {"received": self.received_topic, "orders": self.orders_topic},
            "targets": {t.target: t.topic for t in self.targets},
        }


def order_event_topics(settings: Settings, config: SyncConfig) -> list[TopicSpec]:
    """The ``out.<target>.order-events`` topics; none: order events are unknown types."""
    prefix = settings.export_topic_prefix
    return [
        TopicSpec.of(settings, prefix + config.orders.events_topic(name))
        for name in config.orders.event_targets
    ]


def order_event_routes(
    settings: Settings, config: SyncConfig, send: Send, routes: EventRoutes
) -> None:
    """Order events on ``routes``, produced with ``send``: an intake process's routes (the
    worker's are registered by :func:`install`)."""
    if topics := order_event_topics(settings, config):
        handler = OrderEvents(send, [t.name for t in topics], settings.webhook_ack_timeout_s)
        routes.register(ORDER_EVENT_TYPES, handler.handle)


def install(
    app: ServiceApp,
    settings: Settings,
    config: SyncConfig,
    clients: NorceClients,
    routes: EventRoutes,
) -> OrdersFlow:
    orders = config.orders
    prefix = settings.export_topic_prefix
    spec = functools.partial(TopicSpec.of, settings)
    # Every topic the fan-out writes has the received topic's partitions: partition p of
    # each is written by the one owner of received partition p (agents/orders/fanout.py).
    received = spec(orders_received_topic(settings))
    orders_out = spec(orders_topic(settings))
    targets = [
        OrderTargetSpec(name, prefix + orders.order_topic(name), target.mapper())
        for name, target in orders.targets.items()
    ]
    event_topics = order_event_topics(settings, config)

    ledger = RefLedger(settings, received.name)
    fanout = OrdersFanout(app, settings, received.name, orders_out.name, targets)
    order_producer = OrderProducer(settings, received.name)
    receiver = OrderReceiver(app, settings, ledger, received.name, order_producer)
    order_events = OrderEvents(
        functools.partial(send_acked, app),
        [t.name for t in event_topics],
        settings.webhook_ack_timeout_s,
    )
    if event_topics:  # without an event target, order events stay unknown types (404)
        app.register_topics(*event_topics)
        routes.register(ORDER_EVENT_TYPES, order_events.handle)

    status_sender = _install_status_sender(app, settings, config, clients)

    if settings.orders_receiver_enabled:
        app.register_topics(received, orders_out, *(spec(t.topic) for t in targets))

        async def start_orders() -> None:
            await app.add_runtime_dependency(order_producer)
            await app.add_runtime_dependency(ledger)
            await app.add_runtime_dependency(fanout)

        app.task(start_orders)
        _register_receiver_page(app, receiver)

    flow = OrdersFlow(
        settings=settings,
        ledger=ledger,
        fanout=fanout,
        order_producer=order_producer,
        receiver=receiver,
        order_events=order_events,
        status_sender=status_sender,
        received_topic=received.name,
        orders_topic=orders_out.name,
        targets=targets,
        event_topics=[t.name for t in event_topics],
    )
    _register_stats_page(app, flow)
    return flow


def _install_status_sender(
    app: ServiceApp,
    settings: Settings,
    config: SyncConfig,
    clients: NorceClients,
) -> StatusSender | None:
    status_input = config.order_status_input
    if status_input is None:
        return None
    source = status_input.source
    sent = TopicSpec.of(settings, order_status_sent_topic(settings), compacted=True)
    sender = StatusSender(
        app,
        settings,
        status_input,
        lambda: clients.for_source(source),
        config.sources[source].account_id,
        sent.name,
    )
    app.register_topics(sent)
    if settings.create_input_topics:
        app.register_topics(TopicSpec.of(settings, status_input.topic))

    async def start_status_sender() -> None:
        for warning in config.deprecations:
            log.warning("config: %s", warning)
        await app.add_runtime_dependency(sender)

    app.task(start_status_sender)
    return sender


def _register_receiver_page(app: faust.App, receiver: OrderReceiver) -> None:
    @app.page("/norce/orders")
    class Orders(View):
        async def post(self, request: Request) -> Response:
            web_request: web.Request = request  # type: ignore[assignment]
            return await receiver.handle(web_request)  # type: ignore[return-value]


def _register_stats_page(app: faust.App, flow: OrdersFlow) -> None:
    @app.page("/orders/")
    class OrdersView(View):
        async def get(self, request: Request) -> Response:
            return self.json(flow.stats())

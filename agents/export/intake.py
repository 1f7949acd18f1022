"""Webhook intake: Norce Event -> the events topic, answered only once Kafka has it.

``POST /norce/events/{EventType}``, or ``POST /norce/events`` with the type in the
``x-norce-event-type`` header. In order:

1. the static token header (``webhook_token_header``), compared in constant time: 401
   when missing or wrong, and nothing is read or produced;
2. the body size (``webhook_max_body_bytes``): 413 on a larger ``Content-Length`` or
   once the streamed body passes the limit;
3. a type another flow takes directly (``streams.event_routes``, e.g. order events):
   answered by that flow's handler;
4. the event type (404 when we have no route for it), JSON and the type's schema (400
   with the reason);
5. produce (acks=all): entity events to the events topic keyed ``<kind>:<id>``,
   ``JobCompletedEvent`` to the job events topic keyed ``job:<JobId>``. 200 only after
   the broker acknowledged; 503 when it did not within ``webhook_ack_timeout_s`` or the
   produce failed, so Norce retries.

Redelivery is harmless: a repeated event lands under the same key, enrichment
coalesces it and skips target records that did not change. A 503 whose record reaches
Kafka later anyway (the ack came too late) is just such a redelivery.

:class:`Intake` is the service (an aiohttp handler, built with what it needs);
:func:`register_intake_pages` puts it on the worker's web server, and the intake
processes (``intake_processes``) serve it on ``intake_port`` with
:func:`add_intake_routes`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from aiohttp import web

from agents.export.events import ROUTES, EventRejected, stored_event
from streams import metrics
from streams.event_routes import EventRoutes
from streams.priority import urgent
from streams.secrets_check import secret_matches
from streams.settings import Settings
from streams.topics import job_events_topic, norce_events_topic

log = logging.getLogger(__name__)

EVENT_TYPE_HEADER = "x-norce-event-type"
_CHUNK = 64 * 1024

# (topic, key, value, headers) -> done once the broker acknowledged (acks=all)
Produce = Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[Any]]


class BodyTooLarge(Exception):
    pass


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes (declared or actually sent)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if request.content.at_eof():
            break  # the usual small body came in one read: no second read to learn that
    return b"".join(chunks)


def _json(body: dict[str, Any], status: int) -> web.Response:
    # As Faust's ``View.json`` answers (orjson bytes, utf-8): the same answer whether the
    # intake runs in the worker's web server or in a plain aiohttp app.
    return web.Response(
        body=orjson.dumps(body), content_type="application/json", charset="utf-8", status=status
    )


class Intake:
    """See the module docstring. ``produce`` stores one record acknowledged;
    ``topics_ready`` makes sure the topics it writes exist before the first produce."""

    def __init__(
        self,
        settings: Settings,
        produce: Produce,
        topics_ready: Callable[[], Awaitable[None]],
        routes: EventRoutes,
    ) -> None:
        self.settings = settings
        self._produce = produce
        self._topics_ready = topics_ready
        self.routes = routes
        self.events_topic = norce_events_topic(settings)
        self.job_events_topic = job_events_topic(settings)

    def token_ok(self, given: str | None) -> bool:
        return secret_matches(given, self.settings.webhook_token.get_secret_value())

    async def handle(self, request: web.Request, event_type: str | None) -> web.Response:
        with urgent():  # bulk work (the import projection) steps back meanwhile
            return await self._handle(request, event_type)

    async def _handle(self, request: web.Request, event_type: str | None) -> web.Response:
        settings = self.settings
        if not self.token_ok(request.headers.get(settings.webhook_token_header)):
            return _answer(event_type, 401, {"error": "missing or wrong webhook token"})
        if not event_type:
            return _answer(None, 404, {"error": f"no event type (path or {EVENT_TYPE_HEADER})"})
        try:
            raw = await read_limited(request, settings.webhook_max_body_bytes)
        except BodyTooLarge:
            limit = settings.webhook_max_body_bytes
            return _answer(event_type, 413, {"error": f"body larger than {limit} bytes"})
        if (direct := self.routes.handler_for(event_type)) is not None:  # e.g. order events
            status, answer = await direct(event_type, raw, time.time())
            return _answer(event_type, status, answer, retry_after=5 if status == 503 else None)
        try:
            event = stored_event(event_type, raw, received_at=(now := time.time()))
        except EventRejected as exc:
            label = event_type if exc.status != 404 else "unknown"  # bounded label values
            return _answer(label, exc.status, {"error": exc.message})

        received = f"{now:.3f}".encode()
        headers = [("norce-event-type", event_type.encode()), ("received-at", received)]
        topic = self.job_events_topic if event.job else self.events_topic
        try:
            # asyncio.timeout, not wait_for: wait_for runs the produce in a task of its
            # own, one more task (and loop turns) per webhook
            async with asyncio.timeout(settings.webhook_ack_timeout_s):
                await self._topics_ready()
                await self._produce(topic, event.key.encode(), event.value, headers)
        except Exception as exc:  # TimeoutError, KafkaError, producer not started ...
            log.warning("webhook %s %s not stored: %r; answering 503", event_type, event.key, exc)
            return _answer(event_type, 503, {"error": "event not stored, retry later"},
                           retry_after=5)  # fmt: skip
        return _answer(event_type, 200, {"ok": True, "key": event.key})


def _answer(
    event_type: str | None,
    status: int,
    body: dict[str, Any],
    *,
    retry_after: int | None = None,
) -> web.Response:
    # Labels from a bounded set only: the type is the caller's text (an unauthenticated
    # caller's too), and every new value would be a new series kept forever.
    label = event_type if event_type in ROUTES else ("unknown" if event_type else "")
    metrics.webhooks_in.inc(event_type=label, code=str(status))
    response = _json(body, status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def add_intake_routes(router: web.UrlDispatcher, intake: Intake) -> None:
    """The intake's two URLs on an aiohttp router: the worker's web server's, or an
    intake process's own (``norce_sync/intake_process.py``)."""

    async def typed(request: web.Request) -> web.StreamResponse:
        return await intake.handle(request, request.match_info["event_type"])

    async def header_typed(request: web.Request) -> web.StreamResponse:
        return await intake.handle(request, request.headers.get(EVENT_TYPE_HEADER))

    router.add_post("/norce/events/{event_type}", typed)
    router.add_post("/norce/events", header_typed)


def register_intake_pages(app: faust.App, intake: Intake) -> None:
    """The intake's two URLs on the worker's web server (open: the webhook token is the
    intake's own guard, see ``agents.ops.views.OPEN_PATHS``).

    Plain aiohttp handlers on Faust's aiohttp application, not Faust views: Faust's view
    dispatch and its per-request sensor calls were a cost per webhook that the intake
    does not use (its own metrics count every answer). The ops guard (an aiohttp
    middleware on the same application) still sees every request."""
    add_intake_routes(app.web.web_app.router, intake)

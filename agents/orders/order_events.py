"""Norce's order events, from the webhook intake straight to ``out.<target>.order-events``.

No Query lookup (the event carries what an ERP needs: the order's refs and who), and no
coalescing: every event is its own record, keyed by ClientOrderRef (one partition per
order keeps an order's events in the order they were received), with the event type and
a digest of type and body in headers. A redelivered event is produced again with the
same digest: consumers that must not act twice skip a digest they have seen.

Answered 200 only once every target topic acknowledged; 503 otherwise (Norce retries;
targets that had it get it again, with the same digest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import ValidationError

from agents.orders.digest import order_digest
from norce.orders import OrderEventBody
from streams import metrics

log = logging.getLogger(__name__)

order_events_total = metrics.REGISTRY.counter(
    "norce_sync_order_events_total", "Order events by type and answer.", ["event_type", "code"]
)


# (topic, key, value, headers) -> done once the broker acknowledged (acks=all)
Send = Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[Any]]


class OrderEvents:
    """``send``: the worker's producer, or an intake process's own."""

    def __init__(self, send: Send, topics: list[str], ack_timeout_s: float) -> None:
        self.send, self.topics, self.ack_timeout_s = send, topics, ack_timeout_s
        self.counts: dict[str, int] = {}

    async def handle(
        self, event_type: str, raw: bytes, received_at: float
    ) -> tuple[int, dict[str, Any]]:
        status, answer = await self._handle(event_type, raw, received_at)
        order_events_total.inc(event_type=event_type, code=str(status))
        if status == 200:
            self.counts[event_type] = self.counts.get(event_type, 0) + 1
        return status, answer

    async def _handle(
        self, event_type: str, raw: bytes, received_at: float
    ) -> tuple[int, dict[str, Any]]:
        try:
            data = orjson.loads(raw)
            body = OrderEventBody.model_validate(data)
        except orjson.JSONDecodeError as exc:
            return 400, {"error": f"body is not JSON: {exc}"}
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "body"
            return 400, {"error": f"invalid {event_type}: {where}: {err['msg']}"}
        digest = order_digest({"type": event_type, "body": data})
        headers = [
            ("norce-event-type", event_type.encode()),
            ("event-digest", digest.encode()),
            ("received-at", f"{received_at:.3f}".encode()),
        ]
        key = body.ClientOrderRef.encode()
        try:
            async with asyncio.timeout(self.ack_timeout_s):
                await asyncio.gather(*(self.send(t, key, raw, headers) for t in self.topics))
        except Exception as exc:
            log.warning("order event %s %s not stored: %r; answering 503", event_type, key, exc)
            return 503, {"error": "event not stored, retry later"}
        return 200, {"ok": True, "key": body.ClientOrderRef}

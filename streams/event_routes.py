"""Webhook event types that another flow takes straight from the intake (no events topic,
no Query lookup): the flow registers a handler on the worker's :class:`EventRoutes`, the
intake asks it before its own routes. Keeps the intake free of imports from other flows;
the composition root makes one per worker and hands it to both."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

# (event type, raw body, received at) -> (HTTP status, JSON answer)
DirectHandler = Callable[[str, bytes, float], Awaitable[tuple[int, dict[str, Any]]]]


class EventRoutes:
    """Event type -> the handler of the flow that takes it directly."""

    def __init__(self) -> None:
        self._handlers: dict[str, DirectHandler] = {}

    def register(self, event_types: tuple[str, ...], handler: DirectHandler) -> None:
        for event_type in event_types:
            self._handlers[event_type] = handler

    def handler_for(self, event_type: str) -> DirectHandler | None:
        return self._handlers.get(event_type)

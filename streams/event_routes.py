"""Webhook event types that another flow takes straight from the intake (no events topic,
no Query lookup): the flow registers a handler here, the intake asks here before its own
routes. Keeps the intake free of imports from other flows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

# (event type, raw body, received at) -> (HTTP status, JSON answer)
DirectHandler = Callable[[str, bytes, float], Awaitable[tuple[int, dict[str, Any]]]]

_handlers: dict[str, DirectHandler] = {}


def register(event_types: tuple[str, ...], handler: DirectHandler) -> None:
    for event_type in event_types:
        _handlers[event_type] = handler


def handler_for(event_type: str) -> DirectHandler | None:
    return _handlers.get(event_type)

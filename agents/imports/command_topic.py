"""The single-partition commands topic (``streams.messages.Command``): full-import
requests are this flow's; other types are handled by whoever registered them (reconcile).
One topic, one owner: a reconcile and a full import never overlap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[Any], Awaitable[None]]


class CommandTopic:
    def __init__(self, topic: Any) -> None:
        self.topic = topic  # the Faust commands topic
        self._handlers: dict[str, Handler] = {}

    def register(self, type_: str, handler: Handler) -> None:
        """Handle the commands of ``type_`` (a flow above this one: reconcile)."""
        self._handlers[type_] = handler

    def handler(self, type_: str) -> Handler | None:
        return self._handlers.get(type_)

    async def send(self, key: bytes, value: Any) -> None:
        await self.topic.send(key=key, value=value)

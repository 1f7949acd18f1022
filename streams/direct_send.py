"""One record produced and its acknowledgement awaited, for a caller that answers someone
as soon as the broker has the record (webhook intake).

:func:`streams.kafka.send_acked` goes through Faust's ``Producer.send`` (header
conversion, a sensor call per record) and shields aiokafka's delivery future from the
caller's timeout: about 4% of the worker's CPU per webhook together (bench/RESULTS.md,
session 8). Here the record goes straight to the aiokafka producer under the app's
producer (the same producer, so the same batches, linger and acks=all), and the
delivery future is awaited as it is: aiokafka documents that cancelling it does not stop
the record from being sent, so a caller's timeout only stops the waiting, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faust

from streams.kafka import app_producer


class DirectSend:
    """``await send(topic, key, value, headers)``: returns once the broker acknowledged
    the record (acks=all); raises what the produce raised."""

    __slots__ = ("_app", "_started")

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._started = False

    async def __call__(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        if not self._started:
            await self._app.maybe_start_producer()
            self._started = True
        producer = app_producer(self._app)
        delivery = await producer.send(topic, value, key=key, headers=headers)
        return await delivery

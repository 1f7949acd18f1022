"""A minimal worker for the commit-order reproduction (tests/e2e/test_faust_commit_order.py).

It folds ``COMMIT_ORDER_IN`` into a changelog-backed table ``values`` (key -> n), the
same shape as agents/apply.py writing ``state``: a table write inside stream iteration,
whose changelog record goes through Faust's ProducerBuffer (``send_soon``).

Testing hooks, all off unless their variable is set:

``COMMIT_ORDER_CHANGELOG_DELAY_S``
    every changelog record waits this long before it is handed to aiokafka. It stands in
    for any send that takes longer than ``ProducerBuffer.flush_atmost``'s 0.1 s wait: a
    metadata refresh or a full batch inside ``AIOKafkaProducer.send``, a busy event loop,
    a slow broker. Nothing is dropped: every record is still sent, only later.
``COMMIT_ORDER_KILL_AFTER_COMMIT``
    SIGKILL the process as soon as a consumer commit of the source topic succeeds.

Either way the worker prints one ``COMMIT-ORDER {json}`` line per source commit: the
offsets committed and how many changelog records were, at that moment, still in Faust's
buffer / handed to aiokafka but unacknowledged / acknowledged by the broker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import orjson
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.web import Request, Response, View

from streams.app import create_app
from streams.health import install_health_views
from streams.settings import Settings

app = create_app(Settings())
install_health_views(app)

SOURCE = os.environ["COMMIT_ORDER_IN"]
DELAY_S = float(os.environ.get("COMMIT_ORDER_CHANGELOG_DELAY_S") or 0)
KILL_AFTER_COMMIT = bool(os.environ.get("COMMIT_ORDER_KILL_AFTER_COMMIT"))

source = app.topic(SOURCE, internal=True, partitions=app.conf.topic_partitions)
values = app.Table("values", default=None, partitions=app.conf.topic_partitions)

changelog = {"handed": 0, "acked": 0, "failed": 0}
_original_send = faust_aiokafka.Producer.send
_original_commit = faust_aiokafka.Consumer._commit


async def _send(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
    if not topic.endswith("-changelog"):
        return await _original_send(self, topic, *args, **kwargs)
    if DELAY_S:
        await asyncio.sleep(DELAY_S)
    fut = await _original_send(self, topic, *args, **kwargs)
    changelog["handed"] += 1

    def done(f: asyncio.Future[Any]) -> None:
        changelog["failed" if f.cancelled() or f.exception() else "acked"] += 1

    fut.add_done_callback(done)
    return fut


async def _commit(self: Any, offsets: Any) -> bool:
    did_commit = await _original_commit(self, offsets)
    mine = {str(tp.partition): offset for tp, offset in offsets.items() if tp.topic == SOURCE}
    if did_commit and mine:
        report = {
            "committed": mine,
            "changelog_in_faust_buffer": app.producer.buffer.size,
            "changelog_handed_unacked": changelog["handed"] - changelog["acked"],
            "changelog_acked": changelog["acked"],
            "changelog_failed": changelog["failed"],
            "table_writes": writes,
        }
        print("COMMIT-ORDER " + orjson.dumps(report).decode(), file=sys.stderr, flush=True)
        if KILL_AFTER_COMMIT:
            os.kill(os.getpid(), signal.SIGKILL)
    return did_commit


faust_aiokafka.Producer.send = _send  # type: ignore[method-assign]
faust_aiokafka.Consumer._commit = _commit  # type: ignore[method-assign]

writes = 0


@app.agent(source)
async def fold(stream):  # type: ignore[no-untyped-def]
    global writes
    async for event in stream.events():
        values[event.key.decode()] = event.value["n"]
        writes += 1


@app.page("/values")
async def show_values(self: View, request: Request) -> Response:
    return self.json(dict(values.items()))


if __name__ == "__main__":
    app.main()

"""The webhook intake on its own (no Faust worker): an :class:`Intake` built with a real
producer on the broker and served by a plain aiohttp app over real HTTP. An accepted
event is on the events topic under its key (and the topics were made ready first); a
wrong token, an unknown type and a too-large body are refused and store nothing; a type
another flow registered on the intake's routes is answered by that flow's handler, and
routes are per intake (no module-level registry); a producer that cannot store answers
503 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from agents.config.sync_config import load_config
from agents.export.intake import EVENT_TYPE_HEADER, Intake
from agents.export.topics import ExportTopics, TopicsReady
from streams import kafka
from streams.event_routes import EventRoutes
from streams.settings import Settings
from tests.support.kafka import read_all
from tests.support.stack import write_export_config

pytestmark = pytest.mark.integration

TOKEN = "intake-test-token"
MAX_BODY = 2048


@dataclass
class Direct:
    """An orders-like flow's handler: records what it was handed."""

    calls: list[tuple[str, bytes]] = field(default_factory=list)

    async def handle(self, event_type: str, raw: bytes, received_at: float) -> tuple[int, Any]:
        self.calls.append((event_type, raw))
        return 200, {"ok": True, "handled_by": "direct"}


@dataclass
class Served:
    url: str
    servers: str
    settings: Settings
    producer: AIOKafkaProducer
    topics: ExportTopics
    direct: Direct
    http: ClientSession

    async def post(
        self, path: str, body: bytes, *, token: str | None = TOKEN, **headers: str
    ) -> tuple[int, dict[str, Any], Any]:
        if token is not None:
            headers[self.settings.webhook_token_header] = token
        async with self.http.post(self.url + path, data=body, headers=headers) as answer:
            return answer.status, orjson.loads(await answer.read()), answer.headers


def serve(intake: Intake) -> web.Application:
    # The same two URLs as the worker's pages (agents.export.intake.register_intake_pages).
    async def typed(request: web.Request) -> web.StreamResponse:
        return await intake.handle(request, request.match_info["event_type"])

    async def header_typed(request: web.Request) -> web.StreamResponse:
        return await intake.handle(request, request.headers.get(EVENT_TYPE_HEADER))

    app = web.Application()
    app.router.add_post("/norce/events/{event_type}", typed)
    app.router.add_post("/norce/events", header_typed)
    return app


@pytest.fixture
async def served(kafka_servers: str, unique: str, tmp_path: Path) -> AsyncIterator[Served]:
    config_path, _ = write_export_config(tmp_path, unique)
    settings = Settings(  # type: ignore[call-arg]
        app_id=f"intake-{unique}",
        broker=f"kafka://{kafka_servers}",
        data_dir=tmp_path / "data",
        config_file=config_path,
        export_topic_prefix=f"{unique}.",
        topic_partitions=2,
        webhook_token=SecretStr(TOKEN),
        webhook_max_body_bytes=MAX_BODY,
        webhook_ack_timeout_s=10.0,
    )
    topics = ExportTopics.of(settings, load_config(str(config_path)))
    # No worker made the topics ready: the intake's hook declares them before its first
    # produce (the same TopicsReady the worker's export flow uses).
    ready = TopicsReady(settings, topics, frozenset, lambda: False)
    producer = kafka.producer(settings)
    await producer.start()

    async def produce(topic: str, key: bytes, value: bytes, headers: list[Any]) -> None:
        await producer.send_and_wait(topic, value, key=key, headers=headers)

    routes = EventRoutes()
    direct = Direct()
    routes.register(("OrderReceivedEvent",), direct.handle)
    intake = Intake(settings, produce, ready.ensure, routes)
    try:
        async with TestServer(serve(intake)) as server, ClientSession() as http:
            url = str(server.make_url("")).rstrip("/")
            yield Served(url, kafka_servers, settings, producer, topics, direct, http)
    finally:
        await producer.stop()


def sku_event(part_no: str) -> bytes:
    return orjson.dumps({"ClientId": 1, "PartNo": part_no})


async def test_an_accepted_event_is_on_the_events_topic_under_its_key(served: Served) -> None:
    status, body, _ = await served.post("/norce/events/SkuChangedNotification", sku_event("IN-1"))
    assert (status, body) == (200, {"ok": True, "key": "sku:IN-1"})
    # The type in the header instead of the path: the same.
    status, body, _ = await served.post(
        "/norce/events", sku_event("IN-2"), **{EVENT_TYPE_HEADER: "SkuPriceChangedNotification"}
    )
    assert (status, body) == (200, {"ok": True, "key": "sku:IN-2"})

    records = await read_all(served.servers, served.topics.events.name)
    by_key = {r.key: r for r in records}
    assert sorted(by_key) == [b"sku:IN-1", b"sku:IN-2"]
    stored = orjson.loads(by_key[b"sku:IN-1"].value)
    assert stored["event_type"] == "SkuChangedNotification"
    assert stored["body"]["PartNo"] == "IN-1"
    headers = dict(by_key[b"sku:IN-2"].headers)
    assert headers["norce-event-type"] == b"SkuPriceChangedNotification"
    assert float(headers["received-at"]) > 0


async def test_refused_webhooks_store_nothing(served: Served) -> None:
    status, body, _ = await served.post(
        "/norce/events/SkuChangedNotification", sku_event("BAD-1"), token="wrong"
    )
    assert status == 401, body
    status, body, _ = await served.post(
        "/norce/events/SkuChangedNotification", sku_event("BAD-2"), token=None
    )
    assert status == 401, body
    status, body, _ = await served.post("/norce/events/NoSuchNotification", sku_event("BAD-3"))
    assert status == 404, body
    status, body, _ = await served.post("/norce/events", sku_event("BAD-4"))  # no type at all
    assert status == 404, body
    too_large = orjson.dumps({"ClientId": 1, "PartNo": "BAD-5", "Pad": "x" * MAX_BODY})
    status, body, _ = await served.post("/norce/events/SkuChangedNotification", too_large)
    assert status == 413, body
    assert str(MAX_BODY) in body["error"]
    status, body, _ = await served.post("/norce/events/SkuChangedNotification", b"{not json")
    assert status == 400, body

    # Nothing was stored (an accepted event afterwards is the only record).
    status, _, _ = await served.post("/norce/events/SkuChangedNotification", sku_event("OK-1"))
    assert status == 200
    records = await read_all(served.servers, served.topics.events.name)
    assert [r.key for r in records] == [b"sku:OK-1"]


async def test_a_type_registered_on_the_routes_is_answered_by_its_flow(served: Served) -> None:
    order = orjson.dumps({"ClientOrderRef": "ORD-1"})
    status, body, _ = await served.post("/norce/events/OrderReceivedEvent", order)
    assert (status, body) == (200, {"ok": True, "handled_by": "direct"})
    assert served.direct.calls == [("OrderReceivedEvent", order)]
    # ... after the intake's own checks: a wrong token never reaches the handler.
    status, _, _ = await served.post("/norce/events/OrderReceivedEvent", order, token="wrong")
    assert status == 401
    assert len(served.direct.calls) == 1

    # Routes belong to the intake they were given to: another intake, with routes of its
    # own, does not know the type (the orders flow registered it on the first one only).
    other = Intake(served.settings, _never_produce, _ready, EventRoutes())
    async with TestServer(serve(other)) as server, ClientSession() as http:
        answer = await http.post(
            str(server.make_url("/norce/events/OrderReceivedEvent")),
            data=order,
            headers={served.settings.webhook_token_header: TOKEN},
        )
        assert answer.status == 404
    assert len(served.direct.calls) == 1


async def test_an_event_the_broker_does_not_store_is_answered_503(served: Served) -> None:
    # The intake's producer is gone (as when the broker cannot be reached in time): Norce
    # is told to retry, not that the event was taken.
    await served.producer.stop()
    status, body, headers = await served.post(
        "/norce/events/SkuChangedNotification", sku_event("LOST-1")
    )
    assert status == 503, body
    assert headers["Retry-After"] == "5"


async def _never_produce(*args: Any) -> None:
    raise AssertionError("nothing is produced in this intake")


async def _ready() -> None:
    return None

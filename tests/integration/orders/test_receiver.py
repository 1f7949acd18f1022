"""Norce's order receiver on a worker process: authentication, the XML decision, malformed
orders kept, exactly one record per ClientOrderRef on the orders topic and each target,
and a different order under a known ref refused with both versions dead-lettered."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from norce_simulator import SimulatorServer
from norce_simulator.orders import sample_order
from streams.records import DeadLetter
from tests.integration.export.support import eventually, sim_config, start_worker, stop_worker
from tests.support.broker import ROOT
from tests.support.kafka import read_all
from tests.support.orders import (
    ORDER_TARGETS,
    basic,
    orders_env,
    refs_on,
    write_orders_config,
)
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Env:
    def __init__(
        self,
        servers: str,
        sim: SimulatorServer,
        worker: WorkerProcess,
        app_id: str,
        environ: dict[str, Any],
    ):
        self.servers, self.sim, self.worker, self.app_id = servers, sim, worker, app_id
        self.environ = environ

    @property
    def url(self) -> str:
        return f"{self.worker.url}/norce/orders"

    def target(self, name: str) -> str:
        return f"{self.app_id}.out.{name}.order"

    @property
    def orders_topic(self) -> str:
        return f"{self.app_id}-orders"

    async def dead_letters(self) -> list[DeadLetter]:
        return [
            DeadLetter.model_validate_json(r.value)
            for r in await read_all(self.servers, f"{self.app_id}-dlq")
        ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(kafka_servers: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp = tmp_path_factory.mktemp("orders")
    app_id = f"ord-{uuid.uuid4().hex[:10]}"
    async with SimulatorServer(sim_config()) as sim:
        config = write_orders_config(tmp, app_id)
        environ = orders_env(app_id, kafka_servers, sim.url, config, tmp / "data")
        worker = await start_worker(environ, tmp / "worker.log")
        try:
            yield Env(kafka_servers, sim, worker, app_id, environ)
        finally:
            assert await stop_worker(worker) == 0, worker.tail()


async def post(env: Env, body: bytes, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(env.url, content=body, headers=headers)


def ref() -> str:
    return f"W{uuid.uuid4().hex[:12]}"


async def test_calls_without_the_right_basic_credentials_are_refused(env: Env) -> None:
    body = orjson.dumps(sample_order(ref()))
    assert (await post(env, body)).status_code == 401
    wrong = await post(env, body, **basic(password="nope"))
    assert wrong.status_code == 401
    assert wrong.json()["StatusCode"] == "Failed"
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")


async def test_an_xml_order_is_answered_415_with_the_reason(env: Env) -> None:
    xml = b"<OrderRequest><ClientOrderRef>X1</ClientOrderRef></OrderRequest>"
    answer = await post(env, xml, **basic(), **{"Content-Type": "application/xml"})
    assert answer.status_code == 415
    assert answer.json()["StatusCode"] == "Failed"
    assert "REST (JSON)" in answer.json()["Description"]


async def test_a_malformed_order_is_answered_400_and_kept_with_its_original_bytes(
    env: Env,
) -> None:
    broken = b'{"ClientOrderRef": "", "Items": [{"LineNo": 1}, {"LineNo": 1}]}'
    answer = await post(env, broken, **basic())
    assert answer.status_code == 400
    assert answer.json()["StatusCode"] == "Failed"
    assert "ClientOrderRef" in answer.json()["Description"]
    letters = [d for d in await env.dead_letters() if d.value == broken]
    assert len(letters) == 1 and letters[0].stage == "order-receive"


async def test_unknown_fields_are_kept_and_each_order_lands_once_however_often_it_is_sent(
    env: Env,
) -> None:
    orders = [{**sample_order(ref()), "SomethingNew": {"x": 1}} for _ in range(20)]
    for order in orders:
        body = orjson.dumps(order)
        first = await post(env, body, **basic())
        assert first.status_code == 200 and first.json()["StatusCode"] == "OK", first.text
        # Norce's retry of the same order (key order may differ): OK, nothing new
        again = await post(env, orjson.dumps(dict(reversed(order.items()))), **basic())
        assert again.status_code == 200 and again.json()["StatusCode"] == "OK"
    # and concurrently, as a retry racing its first call
    await asyncio.gather(*(post(env, orjson.dumps(o), **basic()) for o in orders))
    refs = {o["ClientOrderRef"] for o in orders}

    async def landed() -> bool:
        for topic in (env.orders_topic, *(env.target(t) for t in ORDER_TARGETS)):
            counts = await refs_on(env.servers, topic)
            if not refs <= set(counts):
                return False
        return True

    await eventually(landed, timeout=60, what="orders on every topic")
    for topic in (f"{env.app_id}-orders-received", env.orders_topic):
        counts = await refs_on(env.servers, topic)
        assert {r: counts[r] for r in refs} == dict.fromkeys(refs, 1), topic
    for target in ORDER_TARGETS:
        counts = await refs_on(env.servers, env.target(target))
        assert {r: counts[r] for r in refs} == dict.fromkeys(refs, 1), target
    stored = {
        r.key.decode(): orjson.loads(r.value) for r in await read_all(env.servers, env.orders_topic)
    }
    assert stored[orders[0]["ClientOrderRef"]]["SomethingNew"] == {"x": 1}
    erp = {
        r.key.decode(): orjson.loads(r.value)
        for r in await read_all(env.servers, env.target("erp"))
    }
    first: dict[str, Any] = erp[orders[0]["ClientOrderRef"]]
    assert first["order_no"] == orders[0]["ClientOrderRef"]
    assert first["lines"][0]["PartNo"] == "P1"


async def test_a_different_order_under_a_known_ref_is_a_conflict_with_both_versions_kept(
    env: Env,
) -> None:
    order = sample_order(ref())
    assert (await post(env, orjson.dumps(order), **basic())).status_code == 200
    changed = {**order, "CurrencyCode": "EUR"}
    answer = await post(env, orjson.dumps(changed), **basic())
    assert answer.status_code == 409
    assert answer.json()["StatusCode"] == "Failed"
    letters = [d for d in await env.dead_letters() if d.key == order["ClientOrderRef"].encode()]
    assert {d.stage for d in letters} == {"order-conflict"}
    assert sorted(orjson.loads(d.value)["CurrencyCode"] for d in letters) == ["EUR", "SEK"]
    counts = await refs_on(env.servers, f"{env.app_id}-orders-received")
    assert counts[order["ClientOrderRef"]] == 1


ORDER_EVENTS = (
    "OrderReceivedEvent",
    "OrderConfirmedEvent",
    "OrderCancelledEvent",
    "OrderDeliveredEvent",
    "OrderPartlyDeliveredEvent",
    "OrderReadyForPickupEvent",
    "OrderPaymentReceivedEvent",
)


@pytest.mark.parametrize("event_type", ORDER_EVENTS)
async def test_each_order_event_reaches_its_target_topic_as_received(
    env: Env, event_type: str
) -> None:
    """Delivered by the simulator's webhook machinery over HTTP, two events of the type
    for one order (different bodies) and one for another order: all three arrive, each
    as its own record (no coalescing), keyed by ClientOrderRef."""
    token = {"x-norce-webhook-token": "order-test-webhook-token"}
    env.sim.state.set_subscriptions(
        {event_type: {"url": f"{env.worker.url}/norce/events/{event_type}", "headers": token}}
    )
    one, two = ref(), ref()
    bodies = [
        {"ClientId": 1, "ApplicationId": 2, "ClientOrderRef": one, "OrderId": 7, "Note": "a"},
        {"ClientId": 1, "ApplicationId": 2, "ClientOrderRef": one, "OrderId": 7, "Note": "b"},
        {"ClientId": 1, "ApplicationId": 2, "ClientOrderRef": two, "OrderId": 8},
    ]
    for body in bodies:
        env.sim.events.publish(event_type, body)
    topic = f"{env.app_id}.out.erp.order-events"

    async def arrived() -> list[Any]:
        return [
            r for r in await read_all(env.servers, topic) if r.key in (one.encode(), two.encode())
        ]

    await eventually(lambda: _len_at_least(arrived, 3), timeout=60, what=f"{event_type} events")
    records = await arrived()
    assert sorted(orjson.loads(r.value).get("Note", "") for r in records) == ["", "a", "b"]
    assert {dict(r.headers)["norce-event-type"] for r in records} == {event_type.encode()}
    assert [r.key for r in records].count(one.encode()) == 2


async def _len_at_least(read: Any, count: int) -> bool:
    return len(await read()) >= count


async def test_an_order_event_without_a_client_order_ref_is_refused_400(env: Env) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{env.worker.url}/norce/events/OrderConfirmedEvent",
            content=orjson.dumps({"ClientId": 1, "OrderId": 3}),
            headers={"x-norce-webhook-token": "order-test-webhook-token"},
        )
    assert answer.status_code == 400
    assert "ClientOrderRef" in answer.json()["error"]


async def test_the_orders_view_and_command_show_received_forwarded_and_conflicts(
    env: Env,
) -> None:
    order = sample_order(ref())
    assert (await post(env, orjson.dumps(order), **basic())).status_code == 200
    assert (await post(env, orjson.dumps({**order, "OrderType": 9}), **basic())).status_code == 409
    the_ref = order["ClientOrderRef"]

    async def forwarded() -> bool:
        return the_ref in await refs_on(env.servers, env.orders_topic)

    await eventually(forwarded, timeout=60, what="the order forwarded")
    async with httpx.AsyncClient(timeout=30) as http:
        view = (await http.get(f"{env.worker.url}/orders/")).json()
    assert view["received"]["ok"] >= 1 and view["received"]["conflict"] >= 1
    assert view["fanout"]["orders"] >= 1
    command = [sys.executable, "-m", "norce_sync", "orders", "--ref", the_ref]
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        cwd=ROOT,
        env={**os.environ, **env.environ},
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    shown = orjson.loads(done.stdout)
    assert shown["received_calls"] == 1 and shown["on_orders_topic"] == 1
    assert {d["stage"] for d in shown["dead_letters"]} == {"order-conflict"}

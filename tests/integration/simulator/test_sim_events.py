from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from norce_simulator import NORCE_RETRY_SCHEDULE

TOKEN = {"Authorization": "Bearer hook-secret"}


class Receiver:
    """A small webhook target: records requests, answers from a script (then 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.always: int | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            {
                "path": request.path,
                "headers": dict(request.headers),
                "body": orjson.loads(await request.read()),
                "at": time.monotonic(),
            }
        )
        status = self.always or (self.script.pop(0) if self.script else 200)
        return web.Response(status=status)

    def bodies(self, event_type: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith("/" + event_type)]

    async def wait_for(self, n: int, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while len(self.requests) < n:
            assert time.monotonic() < deadline, f"only {len(self.requests)} of {n} webhooks"
            await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/{event}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/"
    yield rec
    await runner.cleanup()


def subscribe(api, receiver: Receiver, *event_types: str) -> None:
    api.sim.state.set_subscriptions(
        {t: {"url": receiver.url + t, "headers": TOKEN} for t in event_types}
    )


async def wait_settled(api, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while any(r.state == "pending" for r in api.sim.state.deliveries):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def test_price_changes_post_one_notification_per_changed_item(api, receiver) -> None:
    await api.control(
        "PUT",
        "subscriptions",
        {
            t: {"url": receiver.url + t, "headers": TOKEN}
            for t in ("SkuPriceChangedNotification", "JobCompletedEvent")
        },
    )
    api.sim.state.seed({"sku": [{"PartNo": "1001"}, {"PartNo": "1002"}]})
    rows = [
        {"PartNo": "1001", "PriceListCode": "STD", "PriceSale": 99.0},
        {"PartNo": "1002", "PriceListCode": "STD", "PriceSale": 5, "QuantityBreak": 10},
    ]
    job = await api.run("Product/ImportSkuPriceLists", rows)
    await receiver.wait_for(3)
    prices = sorted(receiver.bodies("SkuPriceChangedNotification"), key=lambda b: b["PartNo"])
    assert prices == [
        {
            "ClientId": 1,
            "ApplicationId": 2,
            "PartNo": "1001",
            "PricelistId": 1,
            "PricelistCode": "STD",
            "PriceSaleValue": 99.0,
            "QuantityBreak": 1,
            "EntityChanged": "tClientProductSkuPriceList",
        },
        {
            "ClientId": 1,
            "ApplicationId": 2,
            "PartNo": "1002",
            "PricelistId": 1,
            "PricelistCode": "STD",
            "PriceSaleValue": 5.0,
            "QuantityBreak": 10,
            "EntityChanged": "tClientProductSkuPriceList",
        },
    ]
    assert receiver.bodies("JobCompletedEvent") == [
        {"ClientId": 1, "ApplicationId": 2, "JobId": job["JobId"], "StatusId": 2}
    ]
    for req in receiver.requests:
        assert req["headers"]["Authorization"] == "Bearer hook-secret"
        assert req["headers"]["x-norce-event-type"] == req["path"].rsplit("/", 1)[1]
        assert req["headers"]["Content-Type"] == "application/json"
    # The same rows again change nothing: only the JobCompletedEvent is posted.
    job2 = await api.run("Product/ImportSkuPriceLists", rows)
    await receiver.wait_for(4)
    await asyncio.sleep(0.05)
    assert len(receiver.requests) == 4
    assert receiver.bodies("JobCompletedEvent")[-1]["JobId"] == job2["JobId"]


async def test_stock_customer_product_and_failed_job_events(api, receiver) -> None:
    subscribe(
        api,
        receiver,
        "SkuOnHandBreakPointNotification",
        "CustomerChangedNotification",
        "SkuChangedNotification",
        "JobCompletedEvent",
    )
    await api.run(
        "Product/ImportProducts",
        [{"Code": "P", "Variants": [{"Skus": [{"PartNo": "1"}, {"PartNo": "2"}]}]}],
    )
    # After the product: Norce ignores stock of a SKU it does not have.
    await api.run(
        "Product/ImportOnhands", [{"PartNo": "1", "WarehouseCode": "W", "OnhandValue": 2}]
    )
    await api.run("Customer/ImportCustomers", [{"Code": "C9"}])
    api.sim.state.set_faults({"fail_next_jobs": 1})
    failed = await api.run("Customer/ImportCustomers", [{"Code": "C10"}])
    await receiver.wait_for(10)  # 1 stock, 1 customer, 4 SKU, 4 job events
    base = {"ClientId": 1, "ApplicationId": 2}
    assert receiver.bodies("SkuOnHandBreakPointNotification") == [
        base
        | {
            "PartNo": "1",
            "WarehouseCode": "W",
            "LocationCode": "",
            "EntityChanged": "tClientProductSkuOnHand",
        }
    ]
    assert receiver.bodies("CustomerChangedNotification") == [
        base | {"CustomerId": 1, "EntityChanged": "tClientCustomer"}
    ]
    sku_events = receiver.bodies("SkuChangedNotification")
    assert sorted((b["PartNo"], b["EntityChanged"]) for b in sku_events) == [
        ("1", "tClientProduct"),
        ("1", "tClientProductSku"),
        ("2", "tClientProduct"),
        ("2", "tClientProductSku"),
    ]
    completed = receiver.bodies("JobCompletedEvent")
    assert [b["StatusId"] for b in completed] == [2, 2, 2, 3]
    assert completed[-1]["JobId"] == failed["JobId"]


async def test_retries_until_success(start_sim, make_api, receiver) -> None:
    factor = 0.001
    api = make_api(await start_sim(webhook_time_factor=factor))
    receiver.script = [500, 503, 404]
    subscribe(api, receiver, "JobCompletedEvent")
    await api.run("Product/ImportPriceLists", [{"PriceListCode": "STD"}])
    await receiver.wait_for(4)
    await wait_settled(api)
    (event,) = api.sim.state.events()
    assert event["state"] == "ok"
    assert [a["status"] for a in event["attempts"]] == [500, 503, 404, 200]
    at = [a["at"] for a in event["attempts"]]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    expected = [s * factor for s in NORCE_RETRY_SCHEDULE[:3]]  # 5, 10, 15 ms
    for gap, want in zip(gaps, expected, strict=True):
        assert want - 0.002 <= gap < want + 0.25
    stats = (await api.control("GET", "stats"))["webhooks"]
    assert (stats["ok"], stats["dead"], stats["pending"], stats["failed_attempts"]) == (1, 0, 0, 3)


async def test_dead_after_sixteen_retries_on_the_scaled_schedule(
    start_sim, make_api, receiver
) -> None:
    factor = 0.00005  # the 22 h schedule in about 4 s
    api = make_api(await start_sim(webhook_time_factor=factor))
    receiver.always = 503
    subscribe(api, receiver, "JobCompletedEvent")
    await api.run("Product/ImportPriceLists", [{"PriceListCode": "STD"}])
    await receiver.wait_for(17, within=15)
    await wait_settled(api, within=15)
    (event,) = api.sim.state.events()
    assert event["state"] == "dead"
    assert len(event["attempts"]) == 17  # first try + 16 retries
    assert {a["status"] for a in event["attempts"]} == {503}
    at = [r["at"] for r in receiver.requests]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert len(gaps) == 16
    for gap, step in zip(gaps, NORCE_RETRY_SCHEDULE, strict=True):
        assert step * factor - 0.002 <= gap < step * factor + 0.25
    assert gaps[-1] > 1.0  # 6 h scaled: the schedule, not a fixed interval
    await asyncio.sleep(0.1)
    assert len(receiver.requests) == 17  # nothing after death
    stats = (await api.control("GET", "stats"))["webhooks"]
    assert (stats["dead"], stats["ok"], stats["pending"], stats["failed_attempts"]) == (1, 0, 0, 17)


async def test_unreachable_receiver_counts_as_failure(start_sim, make_api) -> None:
    api = make_api(await start_sim(webhook_retry_schedule=(0.01, 0.01)))
    api.sim.state.set_subscriptions({"JobCompletedEvent": {"url": "http://127.0.0.1:9/nothing"}})
    await api.run("Product/ImportPriceLists", [{"PriceListCode": "STD"}])
    await wait_settled(api)
    (event,) = api.sim.state.events()
    assert event["state"] == "dead"
    assert [a["status"] for a in event["attempts"]] == [None, None, None]
    assert all(a["error"] for a in event["attempts"])


async def test_no_subscription_no_delivery(api) -> None:
    await api.run("Product/ImportPriceLists", [{"PriceListCode": "STD"}])
    assert api.sim.state.events() == []
    r = await api.http.put(
        api.sim.url + "/_sim/subscriptions", content=b'{"NoSuchEvent": {"url": "http://x"}}'
    )
    assert r.status_code == 400

"""Norce Event webhooks -> worker -> Query enrichment -> target topics, on the real broker.

One worker and one simulator serve the whole module (a worker takes ~15 s to start);
each test works on SKUs of its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from agents.export.events import parse_event
from norce.connect_header import ConnectHeader
from norce_simulator import SimulatorServer
from tests.integration.export.support import (
    SKU_EVENTS,
    TARGET_TOPICS,
    TOKEN,
    TOKEN_HEADER,
    eventually,
    norce_client,
    query_calls,
    records_by_key,
    sim_config,
    start_worker,
    stop_worker,
    subscribe,
    webhooks_settled,
    worker_env,
)
from tests.support.kafka import produce, read_all
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

WINDOW_S = 1.0
MAX_PENDING = 150  # events enrichment may hold: small, so a burst here meets the bound


class Env:
    def __init__(self, servers: str, sim: SimulatorServer, worker: WorkerProcess, app_id: str):
        self.servers = servers
        self.sim = sim
        self.worker = worker
        self.app_id = app_id

    def topic(self, name: str) -> str:
        return f"{self.app_id}.{name}"

    @property
    def events_topic(self) -> str:
        return f"{self.app_id}-norce-events"

    def hook_url(self, event_type: str) -> str:
        return f"{self.worker.url}/norce/events/{event_type}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(kafka_servers: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp = tmp_path_factory.mktemp("export")
    app_id = f"exp-{uuid.uuid4().hex[:10]}"
    async with SimulatorServer(sim_config()) as sim:
        environ = worker_env(
            app_id,
            kafka_servers,
            sim,
            tmp / "data",
            NORCE_SYNC_EXPORT_WINDOW_S=str(WINDOW_S),
            NORCE_SYNC_EXPORT_MONITOR_INTERVAL_S="1",
            NORCE_SYNC_EXPORT_MAX_PENDING=str(MAX_PENDING),
        )
        worker = await start_worker(environ, tmp / "worker.log")
        try:
            subscribe(sim, worker.url, *SKU_EVENTS)
            yield Env(kafka_servers, sim, worker, app_id)
        finally:
            assert await stop_worker(worker) == 0, worker.tail()


def seed_skus(sim: SimulatorServer, part_nos: list[str]) -> None:
    sim.state.seed(
        {
            "pricelist": [{"PriceListCode": "STD", "Name": "Standard", "CurrencyCode": "SEK"}],
            "sku": [
                {
                    "PartNo": p,
                    "EanCode": f"old-{p}",
                    "Cultures": [{"CultureCode": "sv-SE", "ErpName": f"Old {p}"}],
                }
                for p in part_nos
            ],
            "price": [{"PartNo": p, "PriceListCode": "STD", "PriceSale": 10.0} for p in part_nos],
            "stock": [{"PartNo": p, "WarehouseCode": "W1", "OnhandValue": 5} for p in part_nos],
        }
    )


async def post_event(
    http: httpx.AsyncClient, env: Env, event_type: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await http.post(
        env.hook_url(event_type),
        content=orjson.dumps({"ClientId": 1, "ApplicationId": 2, **body}),
        headers={TOKEN_HEADER: TOKEN, **headers},
    )


async def test_an_import_of_1000_skus_leaves_one_current_record_per_sku_and_target(
    env: Env,
) -> None:
    part_nos = [f"A{i:04d}" for i in range(1000)]
    seed_skus(env.sim, part_nos)
    # 100 products of 10 SKUs: Norce notifies each SKU twice (product and SKU changed).
    products = [
        {
            "Code": f"PA{p:03d}",
            "Variants": [
                {
                    "Skus": [
                        {
                            "PartNo": part_no,
                            "EanCode": f"new-{part_no}",
                            "IsBuyable": True,
                            "Cultures": [{"CultureCode": "sv-SE", "ErpName": f"New {part_no}"}],
                        }
                        for part_no in part_nos[p * 10 : p * 10 + 10]
                    ]
                }
            ],
        }
        for p in range(100)
    ]
    async with norce_client(env.sim) as norce:
        job = await norce.connect.import_products(ConnectHeader(AccountId=1), products)

    async def complete() -> bool:
        for topic in TARGET_TOPICS:
            if len(await records_by_key(env.servers, env.topic(topic))) < 1000:
                return False
        return True

    await eventually(complete, timeout=90, what="1000 records on each target topic")
    await webhooks_settled(env.sim)
    await asyncio.sleep(WINDOW_S * 2)  # room for a (wrong) second record to show up

    sku_events = [d for d in env.sim.state.deliveries if d.body.get("PartNo", "").startswith("A")]
    assert len(sku_events) == 2000, "the simulator notified each SKU twice"
    assert all(d.state == "ok" for d in sku_events)
    state = env.sim.state
    search = await records_by_key(env.servers, env.topic("out.search.sku"))
    market = await records_by_key(env.servers, env.topic("out.marketplace.sku"))
    for by_key in (search, market):
        assert set(by_key) == {p.encode() for p in part_nos}
        assert {len(records) for records in by_key.values()} == {1}, "one record per SKU"
    for part_no in part_nos:
        sku = state.item("sku", part_no)
        price = state.item("price", (part_no, "STD", 1))
        assert sku is not None and price is not None
        doc = orjson.loads(search[part_no.encode()][0].value)
        assert doc["id"] == part_no
        assert doc["ean"] == sku["EanCode"] == f"new-{part_no}"
        assert doc["name"] == sku["Cultures"][0]["ErpName"]
        assert doc["product"] == sku["ProductCode"]
        assert (doc["price"], doc["stock"], doc["in_stock"]) == (price["PriceSale"], 5, True)
        offer = orjson.loads(market[part_no.encode()][0].value)
        assert offer["gtin"] == sku["EanCode"]
        assert offer["buyable"] is True
        assert offer["price"] == {"amount": price["PriceSale"], "currency": "SEK", "list": "STD"}
        assert offer["quantity"] == 5
    headers = dict(search[b"A0000"][0].headers)
    assert headers["norce-event-type"] == b"SkuChangedNotification"
    assert float(headers["received-at"]) > 0
    assert job.job_id


async def test_a_burst_of_50_events_for_one_sku_causes_one_query_lookup(env: Env) -> None:
    seed_skus(env.sim, ["B1"])
    before = query_calls(env.sim)
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=10) as http:
        answers = await asyncio.gather(
            *(post_event(http, env, SKU_EVENTS[i % 3], {"PartNo": "B1"}) for i in range(50))
        )
    burst = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * 50
    assert burst < WINDOW_S, f"the burst took {burst:.2f}s, longer than the window"

    async def exported() -> bool:
        return b"B1" in await records_by_key(env.servers, env.topic("out.search.sku"))

    await eventually(exported, timeout=30, what="the burst's record")
    await asyncio.sleep(WINDOW_S * 2)
    assert query_calls(env.sim) - before == 1
    for topic in TARGET_TOPICS:
        [record] = (await records_by_key(env.servers, env.topic(topic)))[b"B1"]
        assert dict(record.headers)["norce-event-count"] == b"50"


async def test_bad_calls_are_refused_and_produce_nothing(env: Env) -> None:
    before = len(await read_all(env.servers, env.events_topic))
    body = orjson.dumps({"ClientId": 1, "PartNo": "C1"})
    url = env.hook_url("SkuChangedNotification")
    async with httpx.AsyncClient(timeout=10) as http:
        wrong = await http.post(url, content=body, headers={TOKEN_HEADER: TOKEN + "x"})
        missing = await http.post(url, content=body)
        big = orjson.dumps({"ClientId": 1, "PartNo": "C1", "Pad": "x" * (1 << 20)})
        oversized = await http.post(url, content=big, headers={TOKEN_HEADER: TOKEN})

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed
            for _ in range(20):
                yield b" " * 65536

        streamed = await http.post(url, content=chunks(), headers={TOKEN_HEADER: TOKEN})
        malformed = await http.post(url, content=b'{"ClientId": 1,', headers={TOKEN_HEADER: TOKEN})
        invalid = await http.post(url, content=b'{"ClientId": 1}', headers={TOKEN_HEADER: TOKEN})
        unknown = await http.post(
            env.hook_url("OrderConfirmedEvent"), content=body, headers={TOKEN_HEADER: TOKEN}
        )
        untyped = await http.post(
            f"{env.worker.url}/norce/events", content=body, headers={TOKEN_HEADER: TOKEN}
        )
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert (oversized.status_code, streamed.status_code) == (413, 413)
    assert (malformed.status_code, invalid.status_code) == (400, 400)
    assert "PartNo" in invalid.json()["error"]
    assert (unknown.status_code, untyped.status_code) == (404, 404)
    assert len(await read_all(env.servers, env.events_topic)) == before

    # The same body with a good token and the type in the header is accepted: the calls
    # above failed for the reasons tested, not for something else.
    async with httpx.AsyncClient(timeout=10) as http:
        ok = await http.post(
            f"{env.worker.url}/norce/events",
            content=body,
            headers={TOKEN_HEADER: TOKEN, "x-norce-event-type": "SkuChangedNotification"},
        )
    assert ok.status_code == 200, ok.text
    assert len(await read_all(env.servers, env.events_topic)) == before + 1


async def test_query_429_is_retried_and_the_records_still_arrive(env: Env) -> None:
    part_nos = [f"R{i}" for i in range(5)]
    seed_skus(env.sim, part_nos)
    before = query_calls(env.sim)
    env.sim.state.set_faults({"query": {"error_next": 4, "status": 429, "retry_after_s": 1}})
    async with norce_client(env.sim) as norce:
        await norce.connect.import_sku_price_lists(
            ConnectHeader(AccountId=1),
            [{"PartNo": p, "PriceListCode": "STD", "PriceSale": 77.0} for p in part_nos],
        )

    async def arrived() -> bool:
        by_key = await records_by_key(env.servers, env.topic("out.marketplace.sku"))
        return all(p.encode() in by_key for p in part_nos)

    await eventually(arrived, timeout=60, what="records after 429s")
    assert env.sim.state.faults.query.error_next == 0, "the 429s were served"
    # the four 429s plus at least one answered group lookup (the five SKUs share groups)
    assert query_calls(env.sim) - before >= 4 + 1
    by_key = await records_by_key(env.servers, env.topic("out.marketplace.sku"))
    for part_no in part_nos:
        [record] = by_key[part_no.encode()]
        assert orjson.loads(record.value)["price"]["amount"] == 77.0
    assert await read_all(env.servers, f"{env.app_id}-dlq") == []


async def test_a_sku_gone_from_query_becomes_a_tombstone(env: Env) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await post_event(http, env, "SkuChangedNotification", {"PartNo": "GONE-1"})
    assert answer.status_code == 200

    async def arrived() -> bool:
        return b"GONE-1" in await records_by_key(env.servers, env.topic("out.search.sku"))

    await eventually(arrived, timeout=30, what="the tombstone")
    for topic in TARGET_TOPICS:
        [record] = (await records_by_key(env.servers, env.topic(topic)))[b"GONE-1"]
        assert record.value is None
        assert dict(record.headers)["norce-deleted"] == b"true"


async def test_distinct_skus_in_one_window_share_group_lookups_and_all_arrive(env: Env) -> None:
    group = 50  # the default export_lookup_group_size
    present = [f"G{i:03d}" for i in range(110)]
    gone = [f"GX{i:02d}" for i in range(10)]  # never in Query: tombstones from the groups
    seed_skus(env.sim, present)
    part_nos = present + gone
    before = query_calls(env.sim)
    # Straight onto the events topic, as intake stores them, in one produce: posting 120
    # webhooks can take longer than a window on a busy machine, and then the entities
    # would rightly spread over several flushes.
    events = [
        parse_event(
            "SkuPriceChangedNotification",
            orjson.dumps({"ClientId": 1, "ApplicationId": 2, "PartNo": p}),
            received_at=time.time(),
        )
        for p in part_nos
    ]
    started = time.monotonic()
    await produce(env.servers, env.events_topic, [(e.key.encode(), e.to_bytes()) for e in events],
                  raw=True)  # fmt: skip
    took = time.monotonic() - started
    assert took < WINDOW_S / 2, f"producing took {took:.2f}s: the events may span two flushes"

    async def exported() -> bool:
        by_key = await records_by_key(env.servers, env.topic("out.marketplace.sku"))
        return all(p.encode() in by_key for p in part_nos)

    await eventually(exported, timeout=30, what="every SKU's record")
    # ceil: 3 group requests, plus one single lookup per entity a group answer lacked,
    # which confirms it gone before its tombstone (issue 23, item 11)
    assert query_calls(env.sim) - before == -(-len(part_nos) // group) + len(gone)
    for topic in TARGET_TOPICS:
        by_key = await records_by_key(env.servers, env.topic(topic))
        for p in present:
            [record] = by_key[p.encode()]
            assert record.value is not None
            assert orjson.loads(record.value)  # mapped from the group answer
        for p in gone:
            [record] = by_key[p.encode()]
            assert record.value is None
            assert dict(record.headers)["norce-deleted"] == b"true"


async def test_the_operator_view_shows_backlog_lag_and_latency(env: Env) -> None:
    seed_skus(env.sim, ["M1"])
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await post_event(http, env, "SkuChangedNotification", {"PartNo": "M1"})
        assert answer.status_code == 200

        async def drained_and_sampled() -> bool:
            stats = (await http.get(f"{env.worker.url}/export/stats")).json()
            last = stats["history"][-1] if stats["history"] else {}
            # a sample taken after the record went out, with the group's lag read
            return (
                stats["waiting"] == 0
                and last.get("events_lag") == 0
                and (last.get("records_out", 0) == stats["records_out"] > 0)
            )

        await eventually(drained_and_sampled, timeout=30, what="a drained, sampled export")
        stats = (await http.get(f"{env.worker.url}/export/stats")).json()
        assert stats["latency"]["p50_ms"] is not None and stats["latency"]["p50_ms"] > 0
        assert stats["lookups"] >= 1 and stats["query_errors"] == 0
        assert stats["settings"]["group_size"] == 50
        metrics = (await http.get(f"{env.worker.url}/metrics")).text
    group = f"{env.app_id}-export"  # the events topic's reader has a group of its own
    events_lag = f'norce_sync_consumer_lag_records{{group="{group}",topic="{env.events_topic}"}} 0'
    assert events_lag + ".0" in metrics
    assert "norce_sync_export_waiting_events 0.0" in metrics
    assert 'norce_sync_export_latency_seconds_count{kind="sku"}' in metrics
    assert 'norce_sync_webhooks_total{code="200",event_type="SkuChangedNotification"}' in metrics


async def test_a_burst_larger_than_the_bound_is_held_to_it_and_fully_exported(env: Env) -> None:
    part_nos = [f"H{i:04d}" for i in range(4 * MAX_PENDING)]
    seed_skus(env.sim, part_nos)
    before = query_calls(env.sim)
    events = [
        parse_event(
            "SkuChangedNotification",
            orjson.dumps({"ClientId": 1, "ApplicationId": 2, "PartNo": p}),
            received_at=time.time(),
        )
        for p in part_nos
    ]
    await produce(env.servers, env.events_topic, [(e.key.encode(), e.to_bytes()) for e in events],
                  raw=True)  # fmt: skip

    async def exported() -> bool:
        by_key = await records_by_key(env.servers, env.topic("out.search.sku"))
        return all(p.encode() in by_key for p in part_nos)

    await eventually(exported, timeout=60, what="every SKU of the burst")
    async with httpx.AsyncClient(timeout=10) as http:
        stats = (await http.get(f"{env.worker.url}/export/stats")).json()
    assert stats["max_pending"] == MAX_PENDING
    # the bound was reached (the burst was larger) and never passed
    assert stats["peak_pending"] == MAX_PENDING
    # held to 150 at a time, the 600 entities still went in full groups of 50
    assert query_calls(env.sim) - before <= len(part_nos) // 50 + 4
    # the dedupe digests reached their changelog, in the entity's own partition
    events_partition = {r.key: r.partition for r in await read_all(env.servers, env.events_topic)}
    changelog = await read_all(env.servers, f"{env.app_id}-export-digests-changelog")
    digests = {r.key: r for r in changelog if r.key is not None and r.key.startswith(b"sku:H")}
    assert set(digests) == {f"sku:{p}".encode() for p in part_nos}
    for key, record in digests.items():
        assert record.partition == events_partition[key]
        assert set(orjson.loads(record.value)) == {env.topic(t) for t in TARGET_TOPICS}

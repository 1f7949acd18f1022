"""The reconcile's reading and comparison on a real state changelog and the simulator's
Query, paged small and rate limited: every class counted exactly, 429s waited out."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from agents.config.sync_config import load_config
from agents.reconcile.core import reconcile
from agents.reconcile.rules import plan_for
from norce.client import NorceClient
from norce.config import NorceCredentials, NorceEndpoints
from norce.retry import RetryPolicy
from norce_simulator import SimulatorConfig, SimulatorServer
from streams.kafka import consumer
from streams.settings import Settings
from tests.support.broker import ROOT
from tests.support.kafka import create_topics

N = 120
PARTITIONS = 3
PRICES = load_config(ROOT / "config" / "example.yaml").binding_for_topic("erp.public.prices")
DEMO = NorceCredentials(
    client_id="norce-sync-demo", client_secret="demo-secret", application_id="demo-app"
)


def row(n: int, sale: float, **values: Any) -> dict[str, Any]:
    return {
        "PartNo": f"P{n:05d}", "PriceListCode": "STD", "QuantityBreak": 1, "PriceSale": sale,
        "CostPurchase": 6.0, "CostUnit": 6.2, "PriceRecommended": 12.0,
        "IsPriceDiscountable": True, "CurrencyCode": "SEK", "IsActive": True, **values,
    }  # fmt: skip


def value(r: dict[str, Any], *, deleted: bool = False, pending: bool = False) -> bytes:
    return orjson.dumps({"v": [1, 1], "row": r, "d": deleted, "p": 9.0 if pending else None})


def key(n: int) -> bytes:
    return f"erp|price|P{n:05d}|STD|1".encode()


async def test_every_class_is_counted_exactly_through_small_rate_limited_pages(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    topic = f"imp-{unique}-state.prices"
    await create_topics(kafka_servers, [topic], PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = []
        for n in range(N):
            if n % 10 == 0:  # an older value first: the later record must win
                sends.append(await producer.send(topic, value(row(n, 1.0)), key(n), n % 3))
            r = row(n, 100.0 + n)
            if n in (117, 118):
                r["IsActive"] = False
            sends.append(
                await producer.send(
                    topic, value(r, deleted=n in (117, 118), pending=n == 116), key(n), n % 3
                )
            )
        sends.append(await producer.send(topic, None, key(119), 119 % 3))  # gone from state
        sends.append(await producer.send(topic, value(row(7, 7.0)), b"erp|stock|x", 0))
        for sent in sends:
            await sent
    finally:
        await producer.stop()

    config = SimulatorConfig(
        port=0, page_size=25, query_rate_limit_per_s=4.0, token_rate_limit=False
    )
    async with SimulatorServer(config) as sim:
        norce = {n: row(n, 100.0 + n) for n in range(N) if n != 6}  # P00006 missing
        norce[5]["PriceSale"] = 55.0  # P00005 differs
        norce[116]["PriceSale"] = 1.0  # P00116 differs, but a delta is pending for it
        norce[118]["IsActive"] = False  # P00118 deleted at the source, inactive in Norce
        norce[900] = row(900, 9.0, PartNo="EXTRA")
        sim.state.seed({"price": list(norce.values())})
        queued: list[tuple[str, int]] = []

        async def repair(keys: list[tuple[str, int]]) -> None:
            queued.extend(keys)

        reader = consumer(Settings(broker=f"kafka://{kafka_servers}"))
        await reader.start()
        retry = RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=0.2)
        try:
            async with NorceClient(DEMO, NorceEndpoints(base_url=sim.url), retry=retry) as client:
                outcome = await reconcile(
                    plan_for(PRICES), reader, topic, client.query.pages, tmp_path / "scratch",
                    repair=repair,
                )  # fmt: skip
        finally:
            await reader.stop()
        calls = sim.state.calls["query:Products/ProductSkuPriceLists"]

    summary = outcome.tally.summary()
    assert {k: summary[k] for k in ("matching", "different", "missing", "absent", "pending")} == {
        "matching": N - 1 - 4,  # all but P00005, P00006, P00116, P00117 (and P00119, gone)
        "different": 2,  # P00005 (PriceSale), P00117 (IsActive: deleted at the source)
        "missing": 1,  # P00006
        "absent": 2,  # EXTRA, and P00119 (deleted from the state by a tombstone)
        "pending": 1,  # P00116
    }
    assert summary["different_by_field"] == {"IsActive": 1, "PriceSale": 1}
    assert (summary["state_items"], summary["norce_items"]) == (N - 1, N)
    assert summary["would_deactivate"] == 2
    assert sorted(queued) == [
        ("erp|price|P00005|STD|1", 5 % 3),
        ("erp|price|P00006|STD|1", 6 % 3),
        ("erp|price|P00117|STD|1", 117 % 3),
    ]
    assert outcome.repaired == 3
    assert calls > math.ceil(N / 25)  # some pages were refused (429) and retried
    assert not (tmp_path / "scratch").exists()  # the scratch store is removed


STOCK = load_config(ROOT / "config" / "example.yaml").binding_for_topic("erp.public.stock")
SKUS = 40


def stock(part: int, location: str, on_hand: float) -> dict[str, Any]:
    return {
        "PartNo": f"P{part:05d}", "WarehouseCode": "MAIN", "LocationCode": location,
        "OnhandValue": on_hand, "IncomingValue": 0.0, "NextDeliveryDate": "2026-03-01",
        "LeadTimeDayCount": 2, "IsActive": True,
    }  # fmt: skip


async def test_stock_rows_are_flattened_from_paged_skus_and_scoped_by_location(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    """SKUs with zero to three stock rows, paged 7 SKUs at a time: every row seen once."""
    topic = f"imp-{unique}-state.stock"
    await create_topics(kafka_servers, [topic], PARTITIONS)
    rows = [stock(p, loc, float(p)) for p in range(SKUS) for loc in ("A1", "A2", "A3")[: p % 4]]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = []
        for r in rows:
            k = f"erp|stock|{r['PartNo']}|MAIN|{r['LocationCode']}".encode()
            sends.append(await producer.send(topic, value(r), k))
        for sent in sends:
            await sent
    finally:
        await producer.stop()

    config = SimulatorConfig(port=0, page_size=7, token_rate_limit=False)
    async with SimulatorServer(config) as sim:
        norce = [dict(r) for r in rows]
        norce[0]["OnhandValue"] = 99.0  # P00001|MAIN|A1 differs
        del norce[1]  # P00002|MAIN|A1 missing
        norce.append(stock(1, "B1", 1.0))  # absent, in no location the state holds
        norce.append(stock(4, "A2", 1.0))  # absent, in MAIN|A2: a full import deactivates it
        sim.state.seed({"sku": [{"PartNo": f"P{p:05d}"} for p in range(SKUS)], "stock": norce})
        reader = consumer(Settings(broker=f"kafka://{kafka_servers}"))
        await reader.start()
        try:
            async with NorceClient(DEMO, NorceEndpoints(base_url=sim.url)) as client:
                outcome = await reconcile(
                    plan_for(STOCK), reader, topic, client.query.pages, tmp_path / "scratch"
                )
        finally:
            await reader.stop()
        calls = sim.state.calls["query:Products/ProductSkus"]

    summary = outcome.tally.summary()
    assert {k: summary[k] for k in ("matching", "different", "missing", "absent")} == {
        "matching": len(rows) - 2, "different": 1, "missing": 1, "absent": 2,
    }  # fmt: skip
    assert summary["examples"]["different:OnhandValue"] == [
        {"key": "P00001|MAIN|A1", "state": 1.0, "norce": 99.0}
    ]
    assert (summary["state_items"], summary["norce_items"]) == (len(rows), len(rows) + 1)
    assert summary["would_deactivate"] == 1
    assert calls == math.ceil(SKUS / 7)

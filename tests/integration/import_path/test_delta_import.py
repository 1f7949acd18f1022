"""Change data -> state -> scheduled delta imports, on the real broker with the simulator."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import orjson

from norce_simulator import SimulatorServer
from streams.records import DeadLetter
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce, wait_for_records
from tests.support.stack import (
    deliver,
    delta_status,
    import_worker,
    norce_prices,
    trigger_delta,
    wait_applied,
    wait_until,
)

KEYS = 1000
VERSIONS = 10


def price_change(n: int, version: int, op: str = "u") -> tuple[bytes, dict[str, Any]]:
    """Version ``version`` of SKU ``n``; its price encodes the version, so a price
    going down in Norce's history means an older value overwrote a newer one."""
    row = price_row(f"SKU-{n:05d}", float(n * 100 + version))
    return key_bytes(row, PRICE_KEY), envelope("prices", op, row, lsn=1_000_000 + version)


def price_key(n: int) -> str:
    return f"SKU-{n:05d}|STD|1"


def assert_no_regression(sim: SimulatorServer, keys: range) -> None:
    for n in keys:
        written = [h["values"]["PriceSale"] for h in sim.state.history("price", price_key(n))]
        assert written == sorted(written), f"SKU-{n:05d} went back to an older price: {written}"


async def jobs_done(sim: SimulatorServer, count: int) -> bool:
    stats = sim.state.stats()["jobs"]
    return stats["total"] >= count and stats["by_status"].get("Succeeded", 0) == stats["total"]


async def test_one_window_of_changes_becomes_the_fewest_jobs_with_newest_values(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url, max_items_per_job=300) as (
        worker,
        _,
        topics,
    ):
        changes = [price_change(n, v) for v in range(VERSIONS) for n in range(KEYS)]
        await produce(kafka_servers, topics["price"], changes)
        await wait_applied([worker], "erp", "price", KEYS * VERSIONS)

        result = await trigger_delta(worker, "erp", "price")
        assert len(result["batches"]) == math.ceil(KEYS / 300)
        await wait_until(lambda: jobs_done(sim, 4), what="jobs succeeded")
        assert sim.state.stats()["jobs"]["total"] == 4
        assert sum(j.totals for j in sim.state.jobs.values()) == KEYS  # one row per key

        prices = norce_prices(sim)
        assert prices == {f"SKU-{n:05d}": n * 100 + VERSIONS - 1 for n in range(KEYS)}

        async def drained() -> bool:
            return (await delta_status(worker, "erp", "price"))["pending"] == 0

        await wait_until(drained, what="pending drained")
        # Nothing left to send: a second delta posts no job.
        assert (await trigger_delta(worker, "erp", "price"))["batches"] == []


async def test_out_of_order_and_duplicate_changes_never_reach_norce(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (
        worker,
        _,
        topics,
    ):
        keys = range(100)
        rng = random.Random(7)
        sent = 0
        for round_ in range(3):
            # Each round: newer versions, then older ones and duplicates of seen ones.
            newest = [(n, round_ * 10 + 5) for n in keys]
            stale = [(n, rng.randrange(0, round_ * 10 + 5)) for n in keys]
            dupes = [(n, round_ * 10 + 5) for n in keys if n % 3 == 0]
            batch = [price_change(n, v) for n, v in newest + stale + dupes]
            await produce(kafka_servers, topics["price"], batch)
            sent += len(batch)
            await wait_applied([worker], "erp", "price", sent)
            await deliver(worker, sim)
        prices = norce_prices(sim)
        assert prices == {f"SKU-{n:05d}": n * 100 + 25 for n in keys}
        assert_no_regression(sim, keys)


async def test_every_change_arrives_when_a_third_of_connect_calls_fail(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url, max_items_per_job=50) as (
        worker,
        _,
        topics,
    ):
        keys = range(300)
        sim.state.set_faults(
            {
                "connect": {"error_rate": 0.3, "status": 503},
                "job": {"error_rate": 0.3, "status": 429, "retry_after_s": 0.2},
            }
        )
        await produce(kafka_servers, topics["price"], [price_change(n, 1) for n in keys])
        await wait_applied([worker], "erp", "price", len(keys))
        await deliver(worker, sim)
        prices = norce_prices(sim)
        assert prices == {f"SKU-{n:05d}": n * 100 + 1 for n in keys}
        assert sim.state.stats()["calls"]["connect:Product/ImportSkuPriceLists"] >= 6


async def test_malformed_change_data_goes_to_the_dead_letter_topic_and_the_stream_goes_on(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (
        worker,
        _,
        topics,
    ):
        good_before, good_after = price_change(1, 1), price_change(2, 1)
        wrong_type = price_change(3, 1)[1]
        wrong_type["after"]["quantity_break"] = "one"
        missing_key = price_change(4, 1)[1]
        del missing_key["after"]["part_no"]
        unknown_op = {**price_change(5, 1)[1], "op": "x"}
        bad = [
            (b"k1", b"{not json"),
            (b"k2", orjson.dumps(wrong_type)),
            (b"k3", orjson.dumps(missing_key)),
            (b"k4", orjson.dumps(unknown_op)),
        ]
        messages = [(good_before[0], orjson.dumps(good_before[1])), *bad]
        messages.append((good_after[0], orjson.dumps(good_after[1])))
        await produce(kafka_servers, topics["price"], messages, raw=True)
        records = await wait_for_records(kafka_servers, f"dlq-{unique}", 4)
        # The input topic has several partitions: order the letters by their key.
        letters = sorted((DeadLetter.from_bytes(r.value) for r in records), key=lambda d: d.key)
        assert [(d.key, d.value) for d in letters] == bad
        assert all(d.topic == topics["price"] and d.offset is not None for d in letters)
        # A wrong type fails the conversion to the Norce field, in the mapping stage.
        assert [d.stage for d in letters] == ["decode", "map", "validate", "validate"]
        assert "quantity_break" in letters[1].reason or "QuantityBreak" in letters[1].reason
        assert "part_no" in letters[2].reason
        assert "'x'" in letters[3].reason or "op" in letters[3].reason

        await wait_applied([worker], "erp", "price", 2)
        await deliver(worker, sim)
        assert {r["PartNo"] for r in sim.state.list_items("price")} == {"SKU-00001", "SKU-00002"}

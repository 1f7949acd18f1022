"""Reconcile of N prices (default 1,000,000) or stock rows against the simulator: time
and peak RSS.

Seeds a state changelog topic shaped as the worker writes it (8 partitions, 10% of the
keys written twice so the later record must win) and the simulator's prices over its
control API, with drift of every class: 1% of prices changed, 0.1% of rows missing,
0.1% extra rows, 0.1% of the state with a 0 price. Then runs the reconcile as the worker
does (``agents.reconcile.core.reconcile``: changelog into a scratch RocksDB, Query pages
of 500 compared, a merge for the missing) in a child process, and checks every count.

    flock /tmp/norce-bench.lock .venv/bin/python bench/bench_reconcile.py --keys 1000000

``--kind stock``: erp/stock instead, one stock row (warehouse MAIN, location A1) per SKU,
Query paged as SKUs with their OnHands expanded; the same drift on OnhandValue, except
that the 0.1% with 0 on hand are written by Norce (no null/0 rule for stock) and match.

Starts its own broker (tools/kafka) unless KAFKA_BOOTSTRAP_SERVERS is set; prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
from aiokafka.admin import NewTopic  # noqa: E402

from bench.common import start_simulator  # noqa: E402
from streams.kafka import admin_client  # noqa: E402
from streams.kafka import producer as kafka_producer  # noqa: E402
from streams.settings import Settings  # noqa: E402
from tests.support.broker import free_port, kafka_broker  # noqa: E402

PARTITIONS = 8
SEED_CHUNK = 3_000  # the control API takes bodies up to 1 MiB


def peak_rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def stock_row(n: int, on_hand: float) -> dict[str, object]:
    return {
        "PartNo": f"SKU-{n:07d}", "WarehouseCode": "MAIN", "LocationCode": "A1",
        "OnhandValue": on_hand, "IncomingValue": 0.0, "NextDeliveryDate": None,
        "LeadTimeDayCount": 3, "IsActive": True,
    }  # fmt: skip


def state_key(kind: str, n: int) -> bytes:
    tail = "STD|1" if kind == "price" else "MAIN|A1"
    return f"erp|{kind}|SKU-{n:07d}|{tail}".encode()


def state_row(kind: str, n: int, value: float) -> dict[str, object]:
    return row(n, value) if kind == "price" else stock_row(n, value)


def row(n: int, sale: float) -> dict[str, object]:
    return {
        "PartNo": f"SKU-{n:07d}", "PriceListCode": "STD", "QuantityBreak": 1,
        "PriceSale": sale, "CostPurchase": 60.0, "CostUnit": 62.0, "PriceRecommended": 120.0,
        "IsPriceDiscountable": True, "CurrencyCode": "SEK", "IsActive": True,
    }  # fmt: skip


def sale(n: int) -> float:
    return float(100 + n % 1000)


def expected(keys: int, kind: str = "price") -> dict[str, int]:
    """The drift the seeds make, by class: (n % 1000) picks the class of key n."""
    changed = sum(1 for n in range(keys) if n % 100 == 1)
    missing = sum(1 for n in range(keys) if n % 1000 == 2)
    zero = sum(1 for n in range(keys) if n % 1000 == 3)
    extra = keys // 1000
    if kind == "stock":  # a 0 on hand is written: it matches
        zero = 0
    return {
        "matching": keys - changed - missing - zero,
        "different": changed,
        "missing": missing,
        "unwritable": zero,
        "absent": extra,
        "pending": 0,
    }


async def seed_state(servers: str, topic: str, keys: int, kind: str) -> float:
    admin = admin_client(Settings(), servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = kafka_producer(
        Settings(), servers=servers, acks=1, linger_ms=50, max_batch_size=1 << 20
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for n in range(keys):
            key = state_key(kind, n)
            price = 0.0 if n % 1000 == 3 else sale(n)  # the source sent a 0
            if n % 10 == 0:
                old = {"v": [1, 1], "row": state_row(kind, n, 1.0), "d": False, "p": None}
                await producer.send(topic, orjson.dumps(old), key=key)
            value = {"v": [2, 2], "row": state_row(kind, n, price), "d": False, "p": None}
            await producer.send(topic, orjson.dumps(value), key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


def seed_norce(url: str, keys: int, kind: str) -> float:
    started = time.perf_counter()

    def send(chunk: list[dict[str, object]]) -> None:
        if kind == "price":
            body = {"price": chunk}
        else:  # stock is seen through its SKUs in Query: the SKUs first
            body = {"sku": [{"PartNo": r["PartNo"]} for r in chunk], "stock": chunk}
        client.post("/_sim/seed", json=body).raise_for_status()

    with httpx.Client(base_url=url, timeout=600) as client:
        chunk: list[dict[str, object]] = []
        for n in range(keys + keys // 1000):
            if n >= keys:
                chunk.append(state_row(kind, 10_000_000 + n, 5.0))  # extra: not in the state
            elif n % 1000 == 2:
                continue  # missing in Norce
            elif kind == "stock" and n % 1000 == 3:
                chunk.append(stock_row(n, 0.0))  # Norce wrote the 0
            else:
                chunk.append(state_row(kind, n, sale(n) + (0.5 if n % 100 == 1 else 0)))
            if len(chunk) >= SEED_CHUNK:
                send(chunk)
                chunk = []
        if chunk:
            send(chunk)
    return time.perf_counter() - started


async def child(servers: str, topic: str, sim_url: str, kind: str) -> None:
    """The measured part: one reconcile of erp/<kind>, as the worker runs it."""
    from agents.config.sync_config import load_config
    from agents.reconcile.core import reconcile
    from agents.reconcile.rules import plan_for
    from norce.client import NorceClient
    from norce.config import NorceCredentials, NorceEndpoints
    from streams.kafka import consumer
    from streams.settings import Settings

    binding = load_config(ROOT / "config" / "example.yaml").binding_for("erp", kind)
    credentials = NorceCredentials(
        client_id="norce-sync-demo", client_secret="demo-secret", application_id="demo-app"
    )
    phases: dict[str, float] = {}
    started = time.perf_counter()

    async def progress(phase: str, done: int, total: int) -> None:
        if phase == "state" and done >= total:  # the changelog is in the scratch store
            phases.setdefault("state", time.perf_counter() - started)

    repaired = 0

    async def repair(keys: list[tuple[str, int]]) -> None:
        nonlocal repaired  # counted, not sent: the bench measures the comparison
        repaired += len(keys)

    reader = consumer(Settings(broker=f"kafka://{servers}"))
    await reader.start()
    try:
        async with NorceClient(credentials, NorceEndpoints.from_base_url(sim_url)) as norce:
            with tempfile.TemporaryDirectory() as scratch:
                outcome = await reconcile(
                    plan_for(binding), reader, topic, norce.query.pages,
                    Path(scratch) / "reconcile", progress=progress, repair=repair,
                )  # fmt: skip
    finally:
        await reader.stop()
    summary = outcome.tally.summary()
    summary.pop("examples")
    print(
        json.dumps(
            {
                "reconcile_s": round(outcome.duration_s, 1),
                "state_read_s": round(phases.get("state", 0.0), 1),
                "summary": summary,
                "repair_keys": repaired,
                "reconciler_peak_rss_mib": round(peak_rss_kib() / 1024, 1),
            }
        )
    )


def run(keys: int, kind: str) -> dict[str, object]:
    with kafka_broker() as servers:
        topic = f"bench-{uuid.uuid4().hex[:8]}-state.{kind}"
        seed_s = asyncio.run(seed_state(servers, topic, keys, kind))
        port = free_port()
        sim = start_simulator(port, "--no-history", "--no-token-rate-limit")
        try:
            url = f"http://127.0.0.1:{port}"
            norce_seed_s = seed_norce(url, keys, kind)
            out = subprocess.run(
                [sys.executable, __file__, "--child", servers, topic, url, kind],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            sim_rss = peak_rss_kib(sim.pid)
        finally:
            sim.terminate()
            sim.wait()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    want = expected(keys, kind)
    got = {k: result["summary"][k] for k in want}
    if got != want:
        raise SystemExit(f"counts wrong: {got} != {want}")
    return {
        "kind": kind,
        "keys": keys,
        "changelog_records": keys + keys // 10,
        "seed_state_s": round(seed_s, 1),
        "seed_norce_s": round(norce_seed_s, 1),
        **result,
        "counts_exact": True,
        "simulator_peak_rss_mib": round(sim_rss / 1024, 1),
        "load": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--kind", choices=("price", "stock"), default="price")
    parser.add_argument("--child", nargs=4, metavar=("SERVERS", "TOPIC", "SIM_URL", "KIND"))
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(*args.child))
    else:
        print(json.dumps(run(args.keys, args.kind)))


if __name__ == "__main__":
    main()

"""Full import of N keys (default 1,000,000): time and peak RSS.

Seeds a state changelog topic shaped exactly as the worker writes it (8 partitions, 10%
of the keys written twice so the reader must pick each key's latest record), then runs
the full import's reading and streaming (``agents.imports.full_file.StateSnapshot`` into
``ConnectClient.import_items`` with ``FullFile: true``) in a child process against the
simulator, also in a process of its own, and waits for Norce's job to succeed.

    .venv/bin/python bench/bench_full_import.py --keys 1000000

Starts its own broker (tools/kafka) unless KAFKA_BOOTSTRAP_SERVERS is set; prints JSON.
``--topic NAME`` reuses a topic an earlier run seeded (it printed ``topic``; the broker
must be the shared one), so old and new code can be timed alternately on the same data;
``--profile PATH`` records the importing process with py-spy (raw format, 200 Hz).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiokafka.admin import NewTopic  # noqa: E402

from bench.common import cpu_seconds, start_simulator  # noqa: E402
from streams.kafka import admin_client  # noqa: E402
from streams.kafka import producer as kafka_producer  # noqa: E402
from streams.settings import Settings  # noqa: E402
from tests.support.broker import free_port, kafka_broker  # noqa: E402

PARTITIONS = 8


def peak_rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def state_value(n: int, version: int) -> bytes:
    row = {
        "PartNo": f"SKU-{n:07d}",
        "PriceListCode": "STD",
        "QuantityBreak": 1,
        "PriceSale": 100 + n % 1000 + version,
        "CostPurchase": 60.0,
        "CostUnit": 62.0,
        "PriceRecommended": 120.0,
        "IsPriceDiscountable": True,
        "CurrencyCode": "SEK",
        "IsActive": True,
    }
    return orjson.dumps({"v": [1_700_000_000_000 + version, version], "row": row, "d": False})


async def seed(servers: str, topic: str, keys: int) -> float:
    admin = admin_client(Settings(), servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = kafka_producer(
        Settings(),
        servers=servers,
        acks=1,
        linger_ms=50,
        max_batch_size=1 << 20,
        compression_type=None,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for n in range(keys):
            key = f"erp|price|SKU-{n:07d}|STD|1".encode()
            if n % 10 == 0:  # an older version first: the reader must take the latest
                await producer.send(topic, state_value(n, 1), key=key)
            await producer.send(topic, state_value(n, 2), key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


def cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def child(servers: str, topic: str, sim_url: str) -> None:
    """The measured part: what a full import does after its intent is recorded."""
    from agents.imports.full_file import READER_OPTIONS, StateSnapshot
    from norce.client import NorceClient
    from norce.config import NorceCredentials, NorceEndpoints
    from norce.connect import ImportKind
    from norce.connect_header import ConnectHeader
    from streams.kafka import consumer
    from streams.settings import Settings

    settings = Settings(broker=f"kafka://{servers}")
    credentials = NorceCredentials(
        client_id="norce-sync-demo", client_secret="demo-secret", application_id="demo-app"
    )
    cpu_before = cpu_used()
    started = time.perf_counter()
    reader = consumer(settings, **READER_OPTIONS)
    await reader.start()
    try:
        snapshot = StateSnapshot(reader, topic, b"erp|price|")
        total = await snapshot.open()
        counted = time.perf_counter() - started
        count_cpu = cpu_used() - cpu_before
        header = ConnectHeader(
            account_id=1001, full_file=True, sku_price_list_fields_that_are_set=["PriceSale"]
        )
        async with NorceClient(credentials, NorceEndpoints.from_base_url(sim_url)) as norce:
            # A fetch at a time where the code has it (an older checkout streams row by
            # row: the same bench times both).
            chunks = getattr(snapshot, "chunks", None)
            rows: Any = snapshot.rows
            if chunks is not None:
                from norce.jsonstream import ItemBatches

                rows = lambda: ItemBatches(chunks())  # noqa: E731
            response = await norce.connect.import_items(ImportKind.SKU_PRICE_LISTS, header, rows)
            posted = time.perf_counter() - started
            job = await norce.connect.wait_for_job(response.job_id, max_wait=600)
    finally:
        await reader.stop()
    print(
        json.dumps(
            {
                "rows": total,
                "count_pass_s": round(counted, 2),
                "count_pass_cpu_s": round(count_cpu, 2),
                "read_and_post_s": round(posted, 2),
                "until_job_done_s": round(time.perf_counter() - started, 2),
                "job_status": job.status.name,
                "job_totals": job.totals,
                "importer_peak_rss_mib": round(peak_rss_kib() / 1024, 1),
                "importer_cpu_s": round(cpu_used() - cpu_before, 2),
            }
        )
    )


def run(keys: int, topic: str | None = None, profile: str | None = None) -> dict[str, object]:
    with kafka_broker() as servers:
        load_before = os.getloadavg()[0]
        seed_s = 0.0
        if topic is None:
            topic = f"bench-{uuid.uuid4().hex[:8]}-state-changelog"
            seed_s = asyncio.run(seed(servers, topic, keys))
            print(f"seeded {topic} in {seed_s:.1f} s", file=sys.stderr)
        port = free_port()
        sim = start_simulator(port, "--no-history", "--lead-time", "0.5", "--no-token-rate-limit")
        sim_cpu_before = cpu_seconds(sim.pid)
        command = [sys.executable, __file__, "--child", servers, topic, f"http://127.0.0.1:{port}"]
        if profile:
            py_spy = str(Path(sys.executable).parent / "py-spy")
            command = [py_spy, "record", "-r", "200", "-f", "raw", "-o", profile, "--", *command]
        sim_spy = None
        if profile:  # the simulator's side of the same POST
            sim_spy = subprocess.Popen(
                [py_spy, "record", "-r", "200", "-f", "raw", "-o", f"{profile}.simulator",
                 "--pid", str(sim.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        try:
            out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
            sim_rss = peak_rss_kib(sim.pid)
            sim_cpu = cpu_seconds(sim.pid) - sim_cpu_before
        finally:
            sim.terminate()
            sim.wait()
            if sim_spy is not None:
                sim_spy.wait()
    # The child's one JSON line (py-spy, when profiling, writes lines of its own).
    result = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    return {
        "keys": keys,
        "topic": topic,
        "changelog_records": keys + keys // 10,
        "seed_s": round(seed_s, 1),
        **result,
        "simulator_peak_rss_mib": round(sim_rss / 1024, 1),
        # CPU of the simulator's parse, validation and job (the other side of the POST).
        "simulator_cpu_s": round(sim_cpu, 2),
        "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, metavar=("SERVERS", "TOPIC", "SIM_URL"))
    parser.add_argument("--topic", help="a topic an earlier run seeded with --keys")
    parser.add_argument("--profile", metavar="PATH", help="py-spy raw profile of the importer")
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(*args.child))
    else:
        print(json.dumps(run(args.keys, args.topic, args.profile)))


if __name__ == "__main__":
    main()

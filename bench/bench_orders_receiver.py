"""Bench: the order receiver's answer latency at a steady order rate on one worker while
the import projection ingests flat out.

A real broker (``KAFKA_BOOTSTRAP_SERVERS``, else as the tests get one), the simulator
in-process and one worker process. ``--events`` Debezium price changes are produced to
the worker's input topic before it starts, so the projection folds them flat out from its
first second; ``--warmup`` seconds after the worker is ready, orders are POSTed to
``/norce/orders`` (Basic auth, each its own ClientOrderRef) open-loop at ``--rate`` per
second for ``--seconds``: each call starts at its scheduled time whether or not earlier
ones were answered.
Latency = from just before the POST to the full answer. Also reported: how many price
changes the projection folded during the order window (it must be busy), and whether
every order is on the orders topic once.

Prints one JSON object.

    .venv/bin/python bench/bench_orders_receiver.py --rate 200 --seconds 30 --events 300000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    check_alive,
    create_topic,
    get_json,
    is_ready,
    latency_summary_ms,
    price_change,
    produce_batched,
    spawn,
)
from norce_simulator import SimulatorServer  # noqa: E402
from norce_simulator.orders import sample_order  # noqa: E402
from tests.integration.export.support import sim_config  # noqa: E402
from tests.support.broker import kafka_broker  # noqa: E402
from tests.support.orders import basic, orders_env, refs_on, write_orders_config  # noqa: E402
from tests.support.worker import WorkerProcess  # noqa: E402


async def applied(http: httpx.AsyncClient, worker: WorkerProcess) -> int:
    status = await get_json(http, f"{worker.url}/delta/erp/price")
    return int(status["applied"]) if status else 0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    unique = uuid.uuid4().hex[:8]
    app_id = f"bench-ord-{unique}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    with kafka_broker() as servers:
        config = write_orders_config(tmp, app_id)
        price_topic = f"erp.public.prices.{app_id}"
        await create_topic(servers, price_topic, args.partitions)
        messages = (
            price_change(f"SKU-{i % 10_000:06d}", float(i), 10_000 + i) for i in range(args.events)
        )
        await produce_batched(servers, price_topic, args.partitions, messages)
        async with SimulatorServer(sim_config(record_history=False)) as sim:
            env = orders_env(app_id, servers, sim.url, config, tmp / "data")
            env["NORCE_SYNC_TOPIC_PARTITIONS"] = str(args.partitions)
            env["NORCE_SYNC_LOG_LEVEL"] = "warning"
            env.update(item.split("=", 1) for item in args.worker_env)
            worker = WorkerProcess("norce_sync", env, tmp / "worker.log")
            spawn(worker)
            try:
                async with httpx.AsyncClient(timeout=30) as http:
                    while not await is_ready(http, worker):
                        check_alive(worker)
                        await asyncio.sleep(0.1)
                    await asyncio.sleep(args.warmup)  # start-up work (group joins) settles
                    result = await measure(http, worker, args)
                refs = set(result.pop("refs"))
                counts = await refs_on(servers, f"{app_id}-orders-received")
                result["received_once"] = all(counts.get(r) == 1 for r in refs)
            finally:
                await asyncio.to_thread(worker.stop)
    return {"bench": "orders_receiver", "rate": args.rate, "seconds": args.seconds, **result}


async def measure(
    http: httpx.AsyncClient, worker: WorkerProcess, args: argparse.Namespace
) -> dict[str, Any]:
    url = f"{worker.url}/norce/orders"
    headers = {**basic(), "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    refs: list[str] = []
    # aiohttp without a connection limit: an open-loop load must not queue in the client
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def one(n: int) -> None:
        ref = f"B{n:07d}"
        refs.append(ref)
        body = orjson.dumps(sample_order(ref))
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                code = str(response.status)
        except aiohttp.ClientError as exc:
            code = type(exc).__name__
        latencies.append(time.perf_counter() - started)
        statuses[code] = statuses.get(code, 0) + 1

    before = await applied(http, worker)
    total = int(args.rate * args.seconds)
    start = time.perf_counter()
    tasks = []
    for n in range(total):
        delay = start + n / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    took = time.perf_counter() - start
    await session.close()
    after = await applied(http, worker)
    view = await get_json(http, f"{worker.url}/orders/")
    return {
        "orders": total,
        "answers": statuses,
        "achieved_rate": round(total / took, 1),
        "latency": latency_summary_ms(latencies),
        "worker_side_answer_ms": view["answer_ms"] if view else None,
        "price_changes_folded_meanwhile": after - before,
        "projection_changes_per_s_meanwhile": round((after - before) / took),
        "price_events_total": args.events,
        "refs": refs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=5.0, help="Seconds after /ready.")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the worker (repeatable), e.g. NORCE_SYNC_PROJECTION_STEP_BACK=answered",
    )
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

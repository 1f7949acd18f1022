"""Bench: webhook-to-target-topic latency at a steady rate, and Query calls per event in a burst.

Runs a real broker (``KAFKA_BOOTSTRAP_SERVERS``, else Docker or tools/kafka as the tests
do), the simulator in-process and a worker process (``python -m streams worker``), then:

1. steady: ``--rate`` webhooks per second for ``--seconds``, each for a SKU of its own
   (``SkuPriceChangedNotification``); latency = from just before the POST until the record
   is read from ``out.search.sku`` (so it includes the coalescing window, ``--window``);
2. burst: ``--burst-skus`` SKUs x ``--burst-events`` notifications each, sent at once;
   Query calls per event = ``Products/ProductSkus`` calls / events.

Prints one JSON object.

    .venv/bin/python bench/bench_export_latency.py [--rate 200 --seconds 30 --window 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from norce_simulator import SimulatorServer  # noqa: E402
from tests.integration.export.support import (  # noqa: E402
    TOKEN,
    TOKEN_HEADER,
    query_calls,
    sim_config,
    start_worker,
    stop_worker,
    worker_env,
)
from tests.support.broker import kafka_broker  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1) if values else float("nan"),
        "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else float("nan"),
    }


class Arrivals:
    """Reads a target topic and notes when each key first arrives."""

    def __init__(self, servers: str, topic: str) -> None:
        self.servers = servers
        self.topic = topic
        self.seen: dict[bytes, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.servers, enable_auto_commit=False)
        await consumer.start()
        deadline = time.monotonic() + 30
        while not (partitions := consumer.partitions_for_topic(self.topic)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.topic} does not exist")
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.2)
        tps = [TopicPartition(self.topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._task = asyncio.create_task(self._run(consumer))

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.monotonic()
                for records in batch.values():
                    for record in records:
                        self.seen.setdefault(record.key, now)
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def post(http: aiohttp.ClientSession, url: str, part_no: str) -> float:
    body = orjson.dumps({"ClientId": 1, "ApplicationId": 2, "PartNo": part_no})
    started = time.monotonic()
    async with http.post(url, data=body, headers={TOKEN_HEADER: TOKEN}) as answer:
        await answer.read()
        answer.raise_for_status()
    return time.monotonic() - started


async def steady(
    http: aiohttp.ClientSession, url: str, arrivals: Arrivals, rate: float, seconds: float
) -> dict[str, Any]:
    count = int(rate * seconds)
    sent: dict[bytes, float] = {}
    tasks: list[asyncio.Task[float]] = []
    start = time.monotonic() + 0.1
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        part_no = f"S{i:06d}"
        sent[part_no.encode()] = time.monotonic()
        tasks.append(asyncio.create_task(post(http, url, part_no)))
    send_seconds = time.monotonic() - start
    intake = list(await asyncio.gather(*tasks))
    deadline = time.monotonic() + 60
    while len(arrivals.seen.keys() & sent.keys()) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    latencies = [arrivals.seen[k] - t for k, t in sent.items() if k in arrivals.seen]
    return {
        "events": count,
        "achieved_rate_per_s": round(count / send_seconds, 1),
        "arrived": len(latencies),
        "webhook_to_target": summary_ms(latencies),
        "intake_answer": summary_ms(intake),
    }


async def burst(
    http: aiohttp.ClientSession,
    url: str,
    arrivals: Arrivals,
    sim: SimulatorServer,
    skus: int,
    per_sku: int,
    window: float,
) -> dict[str, Any]:
    before = query_calls(sim)
    part_nos = [f"B{i:04d}" for i in range(skus)]
    started = time.monotonic()
    await asyncio.gather(*(post(http, url, p) for _ in range(per_sku) for p in part_nos))
    sent_in = time.monotonic() - started
    deadline = time.monotonic() + 60
    while not all(p.encode() in arrivals.seen for p in part_nos) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(window * 2)
    calls = query_calls(sim) - before
    events = skus * per_sku
    return {
        "skus": skus,
        "events": events,
        "sent_in_s": round(sent_in, 2),
        "query_lookups": calls,
        "query_calls_per_event": round(calls / events, 4),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    app_id = f"bench-exp-{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    with kafka_broker() as servers:
        async with SimulatorServer(sim_config()) as sim:
            count = int(args.rate * args.seconds)
            sim.state.seed(
                {
                    "sku": [{"PartNo": f"S{i:06d}"} for i in range(count)]
                    + [{"PartNo": f"B{i:04d}"} for i in range(args.burst_skus)],
                }
            )
            env = worker_env(
                app_id, servers, sim, tmp / "data", NORCE_SYNC_EXPORT_WINDOW_S=str(args.window)
            )
            worker = await start_worker(env, tmp / "worker.log")
            arrivals = Arrivals(servers, f"{app_id}.out.search.sku")
            try:
                url = f"{worker.url}/norce/events/SkuPriceChangedNotification"
                # aiohttp, not httpx: httpx's pool costs more CPU per request than the
                # worker under test does, and the bench would measure itself.
                connector = aiohttp.TCPConnector(limit=64)
                async with aiohttp.ClientSession(connector=connector) as http:
                    await post(http, url, "S-warmup")  # creates the topics, connects
                    await arrivals.start()
                    steady_result = await steady(http, url, arrivals, args.rate, args.seconds)
                    burst_result = await burst(
                        http, url, arrivals, sim, args.burst_skus, args.burst_events, args.window
                    )
            finally:
                await arrivals.stop()
                await stop_worker(worker)
    return {
        "bench": "export_latency",
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "window_s": args.window,
        "steady": steady_result,
        "burst": burst_result,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=0.5)
    parser.add_argument("--burst-skus", type=int, default=20)
    parser.add_argument("--burst-events", type=int, default=50)
    result = asyncio.run(main(parser.parse_args()))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())

"""Ingest throughput: change events per second through one worker's projection (decode,
map, version check, fold, checkpoint to the state changelog and the local store), next
to a plain aiokafka consumer reading the same topic in the same run; and the webhook
intake's answer latency while the worker ingests flat out.

    .venv/bin/python bench/bench_ingest.py --events 200000 --keys 10000 --partitions 4

How the worker's rate is measured: all events are produced BEFORE the worker starts (on
an input topic this script creates with ``--partitions``), so neither produce time nor
start-up is in the figure. The worker is then started and ``GET /delta/erp/price`` polled
every 0.1 s from the moment the process starts; the rate is the changes folded between
the first poll that sees ``applied`` > 0 and the first that sees ``applied`` == events,
divided by the time between the two polls (``worker_events_per_s``). The plain consumer
reads the same topic from the beginning after the worker stopped.

Webhook probe: from the worker's first ``/ready`` 200 until ingest is done, one
``SkuPriceChangedNotification`` POST every 1/``--webhook-rate`` s (each awaited in its own
task, so a slow answer never delays the next); answer latency p50/p95/p99 of the POSTs
sent while ingest ran (goal p99 < 100 ms). Few samples at small sizes: the ingest window
is short.

Worker CPU: user + system seconds of the worker process between the same two polls, per
100,000 changes (``worker_cpu_s_per_100k``): less moved by other load on a shared machine
than the rate. ``--profile PATH`` records the worker with py-spy (``pip install py-spy``)
over the same window, in py-spy's raw (collapsed stacks) format, at 200 samples/s.

Starts its own broker (tools/kafka) unless KAFKA_BOOTSTRAP_SERVERS is set, and the
simulator in-process; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
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
    LOOPS,
    check_alive,
    cpu_seconds,
    create_topic,
    get_json,
    is_ready,
    latency_summary_ms,
    loop_env,
    mib,
    price_change,
    proc_status_kib,
    produce_batched,
    spawn,
    uses_uvloop,
)
from norce_simulator import SimulatorConfig, SimulatorServer  # noqa: E402
from streams.kafka import group_consumer, partitions_of  # noqa: E402
from streams.settings import Settings  # noqa: E402
from tests.support.broker import kafka_broker  # noqa: E402
from tests.support.stack import SECRETS, worker_env, write_config  # noqa: E402
from tests.support.worker import WorkerProcess  # noqa: E402

TOKEN_HEADER = "x-norce-webhook-token"  # settings.webhook_token_header's default
POLL_S = 0.1


def start_profile(pid: int, path: str) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` into ``path`` until it gets SIGINT."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "-o", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def changelog_records(servers: str, topic: str) -> int:
    """Records the worker produced to a topic (the sum of its end offsets)."""
    consumer = group_consumer(Settings(), topic, servers=servers, group_id=None)
    await consumer.start()
    try:
        parts = await partitions_of(consumer, topic)
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


async def plain_consumer_rate(servers: str, topic: str, count: int) -> float:
    consumer = group_consumer(
        Settings(), topic, servers=servers, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


class WebhookProbe:
    """POSTs Norce webhook events at a steady rate and notes each answer's latency."""

    def __init__(self, url: str, rate: float) -> None:
        self.url = url
        self.rate = rate
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.sent = 0
        self._stop = asyncio.Event()

    async def run(self, http: aiohttp.ClientSession) -> None:
        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic()
        while not self._stop.is_set():
            delay = start + self.sent / self.rate - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            tasks.append(asyncio.create_task(self._post(http, f"SKU-{self.sent % 1000:06d}")))
            self.sent += 1
        await asyncio.gather(*tasks)

    def stop(self) -> None:
        self._stop.set()

    async def _post(self, http: aiohttp.ClientSession, part_no: str) -> None:
        body = orjson.dumps({"ClientId": 1, "ApplicationId": 2, "PartNo": part_no})
        headers = {TOKEN_HEADER: SECRETS["NORCE_SYNC_WEBHOOK_TOKEN"]}
        started = time.monotonic()
        try:
            async with http.post(self.url, data=body, headers=headers) as answer:
                await answer.read()
                status = answer.status
        except aiohttp.ClientError:
            status = -1
        if status == 200:
            self.latencies.append(time.monotonic() - started)
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def measure_worker(
    worker: WorkerProcess, events: int, webhook_rate: float, profile: str | None = None
) -> dict[str, Any]:
    """Start the worker and poll its delta view every 0.1 s until every event is applied;
    run the webhook probe from /ready until then."""
    delta_url = f"{worker.url}/delta/erp/price"
    probe = WebhookProbe(f"{worker.url}/norce/events/SkuPriceChangedNotification", webhook_rate)
    probe_task: asyncio.Task[None] | None = None
    uvloop_mapped = False
    first: tuple[float, int] | None = None
    cpu_first = cpu_last = 0.0
    peak_kib = 0
    spy: subprocess.Popen[bytes] | None = None
    ready_at: float | None = None
    # aiohttp for the probe: httpx's pool costs more CPU per request than the worker's
    # intake does, and the probe would measure itself.
    connector = aiohttp.TCPConnector(limit=64)
    async with (
        httpx.AsyncClient(timeout=10) as http,
        aiohttp.ClientSession(connector=connector) as webhooks,
    ):
        started = spawn(worker)
        deadline = started + 900
        while True:
            check_alive(worker)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{events} changes not applied in 900s: {worker.tail()}")
            if ready_at is None and await is_ready(http, worker):
                ready_at = time.monotonic()
                uvloop_mapped = worker.proc is not None and uses_uvloop(worker.proc.pid)
                probe_task = asyncio.create_task(probe.run(webhooks))
            status = await get_json(http, delta_url)
            now = time.monotonic()
            applied = int(status["applied"]) if status else 0
            if applied > 0 and first is None:
                first = (now, applied)
                assert worker.proc is not None
                cpu_first = cpu_seconds(worker.proc.pid)
                if profile:
                    spy = start_profile(worker.proc.pid, profile)
            if applied >= events:
                assert worker.proc is not None
                cpu_last = cpu_seconds(worker.proc.pid)
                peak_kib = proc_status_kib(worker.proc.pid).get("VmHWM", 0)
                break
            await asyncio.sleep(POLL_S)
        probe.stop()
        if probe_task is not None:
            await probe_task
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait, 60)
    assert first is not None
    window = now - first[0]
    counted = events - first[1]
    return {
        "ready_seconds": round((ready_at or now) - started, 2),
        "first_applied_at_seconds": round(first[0] - started, 2),
        "applied_at_first_poll": first[1],
        "ingest_window_seconds": round(window, 2),
        # All events folded before the first poll saw any: too small a run to measure.
        "worker_events_per_s": round(counted / window) if window > 0 and counted else None,
        "worker_cpu_s_per_100k": round((cpu_last - cpu_first) / counted * 100_000, 3)
        if counted
        else None,
        "worker_peak_rss_mib": mib(peak_kib),
        "worker_uses_uvloop": uvloop_mapped,
        "webhook_probe": {
            "rate_per_s": webhook_rate,
            "sent": probe.sent,
            "statuses": {str(k): v for k, v in sorted(probe.statuses.items())},
            "answer": latency_summary_ms(probe.latencies),
        },
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    unique = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    with kafka_broker() as servers:
        config, topics = write_config(tmp, unique)
        topic = topics["price"]
        await create_topic(servers, topic, args.partitions)
        messages = (
            price_change(f"SKU-{i % args.keys:06d}", float(i), 10_000 + i)
            for i in range(args.events)
        )
        started = time.perf_counter()
        await produce_batched(servers, topic, args.partitions, messages)
        produced = time.perf_counter() - started
        sim_config = SimulatorConfig(port=0, token_rate_limit=False, record_history=False)
        async with SimulatorServer(sim_config) as sim:
            env = worker_env(
                servers,
                unique,
                sim.url,
                config,
                tmp,
                NORCE_SYNC_TOPIC_PARTITIONS=str(args.partitions),
                NORCE_SYNC_EXPORT_TOPIC_PREFIX=f"bench-{unique}.",
                NORCE_SYNC_LOG_LEVEL="warning",
                **loop_env(args.loop),
                **dict(item.split("=", 1) for item in args.worker_env),
            )
            worker = WorkerProcess("norce_sync", env, tmp / "w.log")
            try:
                measured = await measure_worker(
                    worker, args.events, args.webhook_rate, args.profile
                )
            finally:
                if worker.proc is not None:
                    await asyncio.to_thread(worker.stop)
        state = await changelog_records(servers, f"{env['NORCE_SYNC_APP_ID']}-state.{topic}")
        plain = await plain_consumer_rate(servers, topic, args.events)
    rate = measured["worker_events_per_s"]
    return {
        "bench": "ingest",
        "events": args.events,
        "keys": args.keys,
        "partitions": args.partitions,
        "loop": args.loop,
        "produce_seconds": round(produced, 2),
        **measured,
        # One record per changed key per checkpoint: fewer than events when a key
        # changes more than once within a batch.
        "changelog_records": state,
        "plain_consumer_events_per_s": round(plain),
        "ratio_worker_to_plain": round(rate / plain, 3) if rate else None,
        "workdir": str(tmp),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--webhook-rate", type=float, default=50.0, help="webhook POSTs per second")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="the worker's event loop")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the worker (repeatable), e.g. NORCE_SYNC_PROJECTION_BATCH_MAX=20000",
    )
    parser.add_argument(
        "--profile", metavar="PATH", help="py-spy raw profile of the worker's ingest window"
    )
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()

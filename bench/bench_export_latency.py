"""Bench: webhook-to-target-topic latency at steady rates, and a burst of distinct SKUs.

Runs a real broker (``KAFKA_BOOTSTRAP_SERVERS``, else Docker or tools/kafka as the tests
do), the simulator in-process and one worker process (``python -m norce_sync worker``), then:

1. steady, for each of ``--rates``: that many webhooks per second for ``--seconds``, each
   for a SKU of its own (``SkuPriceChangedNotification``); latency = from just before the
   POST until the record is read from ``out.search.sku`` (includes the window, ``--window``);
2. repeat burst: ``--repeat-skus`` SKUs x ``--repeat-events`` notifications each, at once;
3. burst: ``--burst-skus`` distinct SKUs, one event each, posted as fast as intake takes
   them (``--burst-concurrency`` requests in flight); drain rate = events / (last record
   on the target topic - first POST), Query calls per event (``Products/ProductSkus``
   requests / events) and the worker's peak RSS (``VmHWM``) and peak events held.
   ``--burst-poster python`` posts from this process (which also runs the simulator:
   both compete for one interpreter); ``--burst-poster wrk`` has wrk post them from a
   process of its own (``--burst-threads`` threads, ``--burst-concurrency``
   connections; a Lua script hands each thread every n-th PartNo, and a thread that is
   through stops after at most one repeat per connection, which the digests skip).

Prints one JSON object.

    .venv/bin/python bench/bench_export_latency.py --rates 200,500 --seconds 20 \
        --burst-skus 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    LOOPS,
    cpu_with_children,
    intake_env,
    intake_url,
    loop_env,
    uses_uvloop,
)
from norce_simulator import SimulatorServer  # noqa: E402
from streams import gc_tuning  # noqa: E402
from streams.kafka import group_consumer  # noqa: E402
from streams.settings import Settings  # noqa: E402
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
    """Reads a target topic and notes when each key first arrives.

    In a thread with its own event loop: on the bench's loop (which also posts the
    webhooks and runs the simulator) a record could wait for that loop's other work
    before it was noted, and the bench measured itself (the slowest 1% of a steady run
    spent up to ~200 ms there). The thread holds the GIL only briefly, so an arrival is
    noted within the interpreter's switch interval (5 ms)."""

    def __init__(self, servers: str, topic: str) -> None:
        self.servers = servers
        self.topic = topic
        self.seen: dict[bytes, float] = {}
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), name="arrivals", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, 60)
        if self._error is not None or not self._ready.is_set():
            raise RuntimeError(f"reading {self.topic} did not start") from self._error

    async def _run(self) -> None:
        consumer = group_consumer(Settings(), servers=self.servers, enable_auto_commit=False)
        try:
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
            self._ready.set()
            seen = self.seen
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                now = time.monotonic()
                for records in batch.values():
                    for record in records:
                        seen.setdefault(record.key, now)
        except BaseException as error:
            self._error = error
            raise
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)


async def post(http: aiohttp.ClientSession, url: str, part_no: str) -> float:
    body = orjson.dumps({"ClientId": 1, "ApplicationId": 2, "PartNo": part_no})
    started = time.monotonic()
    async with http.post(url, data=body, headers={TOKEN_HEADER: TOKEN}) as answer:
        await answer.read()
        answer.raise_for_status()
    return time.monotonic() - started


async def steady(
    http: aiohttp.ClientSession,
    url: str,
    arrivals: Arrivals,
    rate: float,
    seconds: float,
    prefix: str = "S",
) -> dict[str, Any]:
    count = int(rate * seconds)
    sent: dict[bytes, float] = {}
    tasks: list[asyncio.Task[float]] = []
    start = time.monotonic() + 0.1
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        part_no = f"{prefix}{i:06d}"
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


def rss_mib(pid: int) -> dict[str, float]:
    """Current and peak resident set size of a process (Linux ``/proc``)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mib": fields.get("VmRSS", 0.0), "peak_rss_mib": fields.get("VmHWM", 0.0)}


async def export_stats(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(f"{base}/export/stats") as answer:
        return dict(await answer.json())


# wrk posting the distinct burst: thread t posts D<i> for i = t, t + n, t + 2n, ... < skus
# (n threads); once through, each connection's next request repeats the thread's first
# PartNo (a harmless redelivery) and its answer stops the thread, which notes that in
# the file named by the third argument (wrk itself runs until its duration or SIGINT).
BURST_LUA = """
-- tid: the global setup() sets in this thread's state (a chunk-level local would hide it)
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
local n = 0
local total = 0
local step = 1
local done = false
local noted = false
local note = ""
function init(args)
  wrk.method = "POST"; wrk.headers["%(header)s"] = "%(token)s"
  wrk.headers["Content-Type"] = "application/json"
  total = tonumber(args[1]); step = tonumber(args[2]); note = args[3]
end
function request()
  local i = tid + n * step
  if i >= total then done = true; i = tid else n = n + 1 end
  return wrk.format(nil, nil, nil, string.format(
    '{"ClientId":1,"ApplicationId":2,"PartNo":"D%%06d"}', i))
end
function response(status, headers, body)
  if done then
    if not noted then
      noted = true
      local f = io.open(note, "a"); f:write("done\\n"); f:close()
    end
    wrk.thread:stop()
  end
end
"""


async def wrk_post(
    url: str, skus: int, threads: int, connections: int, tmp: Path
) -> dict[str, Any]:
    """Post the burst with wrk; its answer latencies and non-2xx count."""
    from bench.bench_intake_wrk import parse_wrk

    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    script, note = tmp / "burst.lua", tmp / "burst.done"
    script.write_text(BURST_LUA % {"header": TOKEN_HEADER, "token": TOKEN})
    note.write_text("")
    proc = await asyncio.create_subprocess_exec(
        wrk, f"-t{threads}", f"-c{connections}", "-d600s", "--latency", "-s", str(script),
        url, "--", str(skus), str(threads), str(note),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    while note.read_text().count("done") < threads and proc.returncode is None:
        await asyncio.sleep(0.02)
    posted = time.monotonic()
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)  # every thread is through: wrk prints its figures
    out, _ = await proc.communicate()
    parsed = parse_wrk(out.decode())
    parsed["posted_at"] = posted
    if not parsed.get("requests") or re.search(r"Socket errors", out.decode()):
        print(out.decode(), file=sys.stderr)
    return parsed


async def distinct_burst(
    http: aiohttp.ClientSession,
    worker_url: str,
    intake_base: str,
    arrivals: Arrivals,
    sim: SimulatorServer,
    pid: int,
    skus: int,
    concurrency: int,
    profile: str | None = None,
    poster: str = "python",
    threads: int = 2,
    tmp: Path | None = None,
) -> dict[str, Any]:
    url = f"{intake_base}/norce/events/SkuPriceChangedNotification"
    before = query_calls(sim)
    part_nos = [f"D{i:06d}" for i in range(skus)]
    wanted = {p.encode() for p in part_nos}
    limit = asyncio.Semaphore(concurrency)
    rss_before = rss_mib(pid)

    async def one(part_no: str) -> float:
        async with limit:
            return await post(http, url, part_no)

    spy = None
    if profile:  # py-spy on the worker through the burst (collapsed stacks)
        spy = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
            "--duration", "30", "--format", "raw", "--output", profile, "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    cpu_before, own_before = sum(cpu_with_children(pid)), time.process_time()
    started = time.monotonic()
    wrk_out: dict[str, Any] = {}
    if poster == "wrk":
        assert tmp is not None
        wrk_out = await wrk_post(url, skus, threads, concurrency, tmp)
        intake: list[float] = []
        posted_in = wrk_out.pop("posted_at") - started
    else:
        intake = await asyncio.gather(*(one(p) for p in part_nos))
        posted_in = time.monotonic() - started
    deadline = time.monotonic() + max(120.0, skus / 200)
    while len(arrivals.seen.keys() & wanted) < skus and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    arrived = [arrivals.seen[k] for k in wanted if k in arrivals.seen]
    worker_cpu = sum(cpu_with_children(pid)) - cpu_before  # with its intake processes'
    own_cpu = time.process_time() - own_before
    drained_in = (max(arrived) - started) if arrived else float("nan")
    calls = query_calls(sim) - before
    stats = await export_stats(http, worker_url)
    if spy is not None:
        await spy.wait()
    return {
        "skus": skus,
        "events": skus,
        "arrived": len(arrived),
        "intake_s": round(posted_in, 2),
        "intake_events_per_s": round(skus / posted_in, 1),
        "poster": poster,
        "intake_answer": summary_ms(intake)
        if poster == "python"
        else {k: wrk_out.get(k) for k in ("p50_ms", "p90_ms", "p99_ms")},
        "intake_requests": wrk_out.get("requests", skus),
        "intake_non_2xx": wrk_out.get("non_2xx", 0),
        "drained_in_s": round(drained_in, 2),
        "drain_events_per_s": round(len(arrived) / drained_in, 1),
        "query_calls": calls,
        "query_calls_per_event": round(calls / skus, 4),
        # CPU figures make a shared machine's runs comparable: events per CPU-second of
        # the worker is what one dedicated core would drain (intake included).
        "worker_cpu_s": round(worker_cpu, 1),
        "worker_cpu_ms_per_event": round(worker_cpu * 1000 / skus, 3),
        "events_per_worker_cpu_s": round(skus / worker_cpu, 1) if worker_cpu else None,
        "bench_process_cpu_s": round(own_cpu, 1),  # client, simulator, topic reader
        "load_average": os.getloadavg(),
        "worker_rss_before_mib": rss_before["rss_mib"],
        "worker": {**rss_mib(pid), "peak_pending_events": stats.get("peak_pending")},
        "max_pending_setting": stats.get("max_pending"),
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
    rates = [float(r) for r in args.rates.split(",") if r]
    result: dict[str, Any] = {
        "bench": "export_latency",
        "window_s": args.window,
        "seconds": args.seconds,
        "steady": [],
    }
    with kafka_broker() as servers:
        async with SimulatorServer(sim_config()) as sim:
            # Every steady SKU exists in Norce (the steady runs post "S<n>-<i>"): a missing
            # one is confirmed by a lookup of its own before its tombstone, a path of its own.
            seeds = [
                {"PartNo": f"S{n}-{i:06d}"}
                for n, rate in enumerate(rates)
                for i in range(int(rate * args.seconds))
            ]
            seeds += [{"PartNo": f"B{i:04d}"} for i in range(args.repeat_skus)]
            seeds += [{"PartNo": f"D{i:06d}"} for i in range(args.burst_skus)]
            sim.state.seed({"sku": seeds})
            env = worker_env(
                app_id,
                servers,
                sim,
                tmp / "data",
                NORCE_SYNC_EXPORT_WINDOW_S=str(args.window),
                **loop_env(args.loop),
                **(intake := intake_env(args.intake_processes)),
            )
            worker = await start_worker(env, tmp / "worker.log")
            assert worker.proc is not None
            pid = worker.proc.pid
            result["loop"] = args.loop
            result["worker_uses_uvloop"] = uses_uvloop(pid)
            result["intake_processes"] = args.intake_processes
            arrivals = Arrivals(servers, f"{app_id}.out.search.sku")
            try:
                intake_base = intake_url(worker.url, intake)
                url = f"{intake_base}/norce/events/SkuPriceChangedNotification"
                # aiohttp, not httpx: httpx's pool costs more CPU per request than the
                # worker under test does, and the bench would measure itself.
                connector = aiohttp.TCPConnector(limit=max(64, args.burst_concurrency))
                async with aiohttp.ClientSession(connector=connector) as http:
                    await post(http, url, "S-warmup")  # creates the topics, connects
                    await arrivals.start()
                    for n, rate in enumerate(rates):
                        before = query_calls(sim)
                        one = await steady(http, url, arrivals, rate, args.seconds, f"S{n}-")
                        one["rate_per_s"] = rate
                        one["query_calls"] = query_calls(sim) - before
                        result["steady"].append(one)
                    if args.repeat_skus:
                        result["repeat_burst"] = await burst(
                            http, url, arrivals, sim, args.repeat_skus, args.repeat_events,
                            args.window,
                        )  # fmt: skip
                    if args.burst_skus:
                        result["burst"] = await distinct_burst(
                            http, worker.url, intake_base, arrivals, sim, pid, args.burst_skus,
                            args.burst_concurrency, args.profile, args.burst_poster,
                            args.burst_threads, tmp,
                        )  # fmt: skip
                    result["export_stats"] = await export_stats(http, worker.url)
            finally:
                await arrivals.stop()
                await stop_worker(worker)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="200,500", help="steady rates, comma separated")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=0.5)
    parser.add_argument("--repeat-skus", type=int, default=20)
    parser.add_argument("--repeat-events", type=int, default=50)
    parser.add_argument("--burst-skus", type=int, default=100_000)
    parser.add_argument("--burst-concurrency", type=int, default=64)
    parser.add_argument(
        "--burst-poster", choices=("python", "wrk"), default="python",
        help="who posts the distinct burst: this process (with the simulator) or wrk",
    )  # fmt: skip
    parser.add_argument("--burst-threads", type=int, default=2, help="wrk threads (burst)")
    parser.add_argument(
        "--intake-processes", type=int, default=0,
        help="the worker's NORCE_SYNC_INTAKE_PROCESSES: webhooks go to their port, and "
        "their CPU counts with the worker's",
    )  # fmt: skip
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="the worker's event loop")
    parser.add_argument("--profile", help="py-spy the worker for 30 s of the burst into this file")
    parser.add_argument(
        "--default-gc", action="store_true", help="keep CPython's GC thresholds in the bench"
    )
    args = parser.parse_args()
    # This process hosts the simulated Norce, the poster and the reader that notes
    # arrivals: with CPython's default GC thresholds its collections (20,000 tasks and
    # answers held per steady run) stalled all three, and the slowest 1% measured them
    # (1,000/s: p99 545-578 ms default, 532-542 ms tuned; bench/RESULTS.md). The worker
    # under test tunes its own GC the same way when it starts.
    if not args.default_gc:
        gc_tuning.tune()
    result = asyncio.run(main(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())

"""Scale out (issue 24): the import projection and webhook intake through 1, 2 and 4
worker processes of one app, and what a worker joining or leaving mid-load costs.

    .venv/bin/python bench/bench_scale.py                                  # full size
    # small, each under a minute: the worker counts, then the join/leave alone
    .venv/bin/python bench/bench_scale.py --events 40000 --keys 2000 --workers 1,2 \
        --no-rebalance
    .venv/bin/python bench/bench_scale.py --keys 2000 --workers "" \
        --rebalance-seconds 8 --rebalance-rate 2000

One broker (``KAFKA_BOOTSTRAP_SERVERS``, else as the tests get one), the simulator
in-process (the catalogue seeded with every SKU, so Norce stores the prices), workers
started as ``python -m norce_sync worker`` (as the e2e tests do), deltas on a schedule
(``--delta-schedule``).

Per worker count N (``--workers``; a fresh app, input topic with ``--partitions``): the N
workers are started side by side and, once all answer /ready (start-up and group joins
out of the figures), ``--settle`` seconds passed and their idle CPU was read for
``--idle-seconds``, ``--events``
Debezium price changes over ``--keys`` keys are produced flat out (change i sets key
i % keys to price i + 1, so each key's last change is its highest price): by default
built before the window and produced by kcat (``apt-get install kcat``) in about a
second while the workers are frozen (SIGSTOP; the webhooks pause meanwhile), so the
window starts as they go on and they fold a backlog, with the cores to themselves;
``--producer python`` sends them from a thread of the bench during the window, as
sessions 7-9 measured (its ~35,000/s then limits the ingest and competes with the
workers for the cores). Reported:

- ``events_per_s``: changes folded (``applied`` summed over the workers' ``/delta`` views,
  polled every 0.2 s) between the first poll that sees any and the first that sees all;
- ``cpu_s_per_100k``: user+system CPU seconds (``/proc/<pid>/stat``) summed over the N
  workers from the first change produced (with kcat: from the workers' thaw, everything
  produced) until all are applied, per 100,000 events (the
  figure that must stay flat); ``cpu_s_per_100k_less_idle`` without the workers' idle
  CPU (``idle_cpu_s_per_s``, read before the load) over that time;
- ``webhook``: answer latency of ``SkuPriceChangedNotification`` POSTs at
  ``--webhook-rate`` per second in total, spread evenly over the workers, sent while the
  projection ingests;
- ``delta_jobs_per_tick``: Norce jobs created during the window / schedule ticks in it;
- ``changelog_records``: records in the state changelog at the end (checkpoints write
  one per changed key, a delta's marks one per key sent);
- ``delivered``, ``lost_keys`` (a key whose price in Norce is not its last change) and
  ``regressed_keys`` (a key's Norce write history goes back), after the scheduled deltas
  delivered everything (the kill tests' checks, ``tests/support/stack.py``).

``--repeat N`` runs the worker counts N times, interleaved (1, 2, 4, 1, 2, 4, ...), and
reports each round's ratios to its first count and, per count, the median ratio.

Rebalance (unless ``--no-rebalance``): a fresh app with ``--rebalance-from`` workers while
changes are produced at ``--rebalance-rate`` per second over the same keys (each key's
price rising); after ``--rebalance-seconds`` a worker is added, after as many more one of
the first ones is stopped (SIGTERM, ``--leave kill`` for SIGKILL), then the load runs as
long again and stops. The projection's committed offsets (group ``<app>-projection``) are
read every 0.2 s: per event, for each partition the longest time its committed offset
stood still while it had input waiting; ``resumed_after_s`` = from the event until the
last partition advanced after its longest stall (``max_stall_s`` is the stall itself).
Then ``lost_keys``, ``regressed_keys`` and ``duplicate_writes`` (a Norce write equal to
the key's previous write: the same change sent twice) as above.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from aiokafka import TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ingest import WebhookProbe, changelog_records  # noqa: E402
from bench.common import (  # noqa: E402
    check_alive,
    create_topic,
    get_json,
    is_ready,
    latency_summary_ms,
    price_change,
    produce_batched,
    produce_with_kcat,
    spawn,
    write_records,
)
from bench.common import cpu_seconds as process_cpu_seconds  # noqa: E402
from norce_simulator import SimulatorConfig, SimulatorServer  # noqa: E402
from streams.kafka import admin_client, consumer  # noqa: E402
from streams.settings import Settings  # noqa: E402
from tests.support.broker import kafka_broker  # noqa: E402
from tests.support.stack import norce_prices, seed_skus, worker_env, write_config  # noqa: E402
from tests.support.worker import SESSION_TIMEOUT_S, WorkerProcess  # noqa: E402

POLL_S = 0.2
# A partition's committed offset standing still longer than this, with input waiting:
# stopped. Over the projection's own rhythm: it commits with each checkpoint, at most
# ``projection_checkpoint_interval_ms`` (1 s) after the first change folded, seen by a
# poll every 0.2 s (while input flows it no longer checkpoints in every gap between the
# load's chunks, 0.25 s apart).
STALL_S = 2.0


def part_no(prefix: str, n: int) -> str:
    return f"{prefix}-{n:06d}"


def last_changes(prefix: str, changes: int, keys: int) -> dict[str, float]:
    """Each key's price after changes 0..changes-1 (change i: key i % keys, price i + 1)."""
    return {
        part_no(prefix, k): float(changes - (changes - 1 - k) % keys)
        for k in range(min(keys, changes))
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a worker so far; 0 once it is gone (``check_alive``
    reports a dead worker)."""
    try:
        return process_cpu_seconds(pid)
    except OSError:
        return 0.0


def schedule_seconds(schedule: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(schedule[:-1]) * units[schedule[-1]]


class Stack:
    """One app: its config, environment, input topic and workers."""

    def __init__(self, servers: str, sim: SimulatorServer, args: argparse.Namespace) -> None:
        self.unique = uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        self.servers = servers
        self.args = args
        config, topics = write_config(self.tmp, self.unique, delta_schedule=args.delta_schedule)
        self.topic = topics["price"]
        self.env = worker_env(
            servers,
            self.unique,
            sim.url,
            config,
            self.tmp,
            NORCE_SYNC_TOPIC_PARTITIONS=str(args.partitions),
            NORCE_SYNC_EXPORT_TOPIC_PREFIX=f"bench-{self.unique}.",
            NORCE_SYNC_LOG_LEVEL=args.worker_log_level,
            NORCE_SYNC_BROKER_SESSION_TIMEOUT_S=SESSION_TIMEOUT_S,
            NORCE_SYNC_ORPHAN_GRACE_S="1",
        )
        if getattr(args, "cpu_profile", None):  # bench_idle.py's Stack has none
            os.makedirs(args.cpu_profile, exist_ok=True)
            self.env["NORCE_SYNC_CPU_SAMPLES"] = os.path.abspath(args.cpu_profile)
            self.env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(ROOT / "bench" / "cpu_sampler"), os.environ.get("PYTHONPATH")) if p
            )
        # The tests' quicker job polls and backlog reports are for waiting in tests; the
        # workers here run with the service's defaults, as deployed (the backlog report is
        # read by every worker, so the tests' 1 s cost grew with the worker count).
        for name in (
            "NORCE_SYNC_OPS_BACKLOG_INTERVAL_S",
            "NORCE_SYNC_JOB_POLL_MIN_S",
            "NORCE_SYNC_JOB_POLL_MAX_S",
            "NORCE_SYNC_JOB_POLL_TICK_S",
        ):
            self.env.pop(name, None)
        self.group = f"{self.env['NORCE_SYNC_APP_ID']}-projection"
        self.workers: list[WorkerProcess] = []
        self.stop_timeouts = 0
        # Keys of this app only: the simulator is shared by the runs of one bench.
        self.prefix = f"K{self.unique}"
        seed_skus(sim, (part_no(self.prefix, k) for k in range(args.keys)))

    def change(self, i: int) -> tuple[bytes, bytes]:
        """Change i: key i % keys gets price i + 1 (each key's prices only rise; never 0,
        which Norce does not write)."""
        return price_change(part_no(self.prefix, i % self.args.keys), float(i + 1), 10_000 + i)

    def new_worker(self) -> WorkerProcess:
        n = len(self.workers)
        # Each worker its own data dir (local stores), as separate hosts would have.
        env = {**self.env, "NORCE_SYNC_DATA_DIR": str(self.tmp / f"data{n}")}
        worker = WorkerProcess("norce_sync", env, self.tmp / f"w{n}.log")
        self.workers.append(worker)
        return worker

    def live(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.proc is not None and w.proc.poll() is None]

    async def applied(self, http: httpx.AsyncClient) -> int:
        views = await asyncio.gather(
            *(get_json(http, f"{w.url}/delta/erp/price") for w in self.live())
        )
        return sum(int(v["applied"]) for v in views if v)

    async def stop_all(self) -> None:
        """SIGTERM every live worker side by side. One that does not exit within 60 s is
        killed and counted (``stop_timeouts``), not raised: the figures stand."""
        results = await asyncio.gather(
            *(asyncio.to_thread(w.stop) for w in self.live()), return_exceptions=True
        )
        self.stop_timeouts += sum(isinstance(r, subprocess.TimeoutExpired) for r in results)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, subprocess.TimeoutExpired):
                raise r


async def wait_ready(http: httpx.AsyncClient, workers: list[WorkerProcess]) -> None:
    deadline = time.monotonic() + 120
    pending = list(workers)
    while pending:
        for w in pending:
            check_alive(w)
        pending = [w for w in pending if not await is_ready(http, w)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready in 120 s: {pending[0].tail()}")
        await asyncio.sleep(POLL_S)


async def timed(work: Awaitable[Any]) -> float:
    """Seconds ``work`` took."""
    started = time.monotonic()
    await work
    return time.monotonic() - started


async def seconds_to_ready(
    http: httpx.AsyncClient, worker: WorkerProcess, since: float
) -> float | None:
    """Seconds from ``since`` until the worker answers /ready (None if it exited)."""
    while not await is_ready(http, worker):
        if worker.proc is not None and worker.proc.poll() is not None:
            return None
        await asyncio.sleep(POLL_S)
    return round(time.monotonic() - since, 2)


async def wait_delivered(
    sim: SimulatorServer, expected: dict[str, float], timeout: float
) -> tuple[bool, float]:
    """Scheduled deltas deliver: waits until Norce's prices are ``expected``."""
    started = time.monotonic()
    while {k: v for k, v in norce_prices(sim).items() if k in expected} != expected:
        if time.monotonic() - started > timeout:
            return False, time.monotonic() - started
        await asyncio.sleep(0.5)
    return True, time.monotonic() - started


def write_checks(sim: SimulatorServer, expected: dict[str, float]) -> dict[str, int | float | None]:
    prices = norce_prices(sim)
    writes = duplicates = regressed = 0
    unpriced: list[dict[str, Any]] = []
    for key in expected:
        history = sim.state.history("price", f"{key}|STD|1")
        # A write without a PriceSale (not expected from this load) is reported, not compared.
        unpriced += [h for h in history if h["values"].get("PriceSale") is None]
        written = [
            h["values"]["PriceSale"] for h in history if h["values"].get("PriceSale") is not None
        ]
        writes += len(written)
        duplicates += sum(1 for a, b in itertools.pairwise(written) if a == b)
        regressed += any(b < a for a, b in itertools.pairwise(written))
    return {
        "lost_keys": sum(1 for k, v in expected.items() if prices.get(k) != v),
        "regressed_keys": regressed,
        "writes": writes,
        "duplicate_writes": duplicates,
        "writes_without_price": len(unpriced),
        "write_without_price_example": unpriced[0] if unpriced else None,
    }


class WebhookLoad:
    """``--webhook-rate`` POSTs per second in total, spread evenly over the workers, that
    can be stopped and started again (``done``: every probe run so far)."""

    def __init__(self, http: aiohttp.ClientSession, workers: list[WorkerProcess], rate: float):
        self.http = http
        self.workers = workers
        self.rate = rate
        self.done: list[WebhookProbe] = []
        self._running: list[tuple[WebhookProbe, asyncio.Task[None]]] = []

    def start(self) -> None:
        if self.rate <= 0:  # 0: ingest alone, no webhook load
            return
        for w in self.workers:
            probe = WebhookProbe(
                f"{w.url}/norce/events/SkuPriceChangedNotification", self.rate / len(self.workers)
            )
            self._running.append((probe, asyncio.create_task(probe.run(self.http))))
            self.done.append(probe)

    async def stop(self) -> None:
        """Stops sending; returns once every POST sent was answered."""
        for probe, _ in self._running:
            probe.stop()
        await asyncio.gather(*(task for _, task in self._running))
        self._running.clear()


# How long workers may be frozen for sure without leaving their groups: a member frozen
# right before its next heartbeat (every 3 s) still has the session timeout (6 s) less 3 s.
FREEZE_SAFE_S = 3.0


def build_load(stack: Stack) -> Path:
    """The ``--events`` changes as a file for kcat (``bench.common.write_records``)."""
    path = stack.tmp / "changes.tsv"
    write_records(path, (stack.change(i) for i in range(stack.args.events)))
    return path


async def produce_backlog(workers: list[WorkerProcess], stack: Stack, records: Path) -> float:
    """Produce the changes with kcat while the workers are frozen (SIGSTOP), then let them
    go (SIGCONT): they fold a backlog, and neither kcat nor the broker's writes of it
    share the cores with their fold (with 2 or 4 workers folding, kcat took 2-4.5 s
    instead of ~1 s and the workers folded what trickled in: bench/RESULTS.md, session
    10). Frozen up to 3 s (``FREEZE_SAFE_S``), a member misses no session: it heartbeats
    every 3 s and the session timeout is 6 s. The seconds kcat took."""
    frozen = [w.proc.pid for w in workers if w.proc is not None]
    try:
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        took = await asyncio.to_thread(produce_with_kcat, stack.servers, stack.topic, records)
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):  # one that died: check_alive says
                os.kill(pid, signal.SIGCONT)
        await asyncio.to_thread(records.unlink, missing_ok=True)  # ~200 MiB per run
    if took > FREEZE_SAFE_S:
        print(
            f"kcat took {took:.1f} s: workers frozen longer than a heartbeat interval may "
            "have left the group and rebalanced in the window",
            file=sys.stderr,
        )
    return took


async def produce_while_folding(stack: Stack) -> float:
    """``--producer python``: a thread of this process builds and sends the changes while
    the workers fold (~35,000/s at best on 2 cores, competing with them for the cores),
    so the workers fold what arrives. The seconds it took."""
    messages = (stack.change(i) for i in range(stack.args.events))
    # On a loop of its own in a thread: building 400,000 records would otherwise hold up
    # this loop's webhook probe and the simulator for seconds.
    return await asyncio.to_thread(
        asyncio.run,
        timed(produce_batched(stack.servers, stack.topic, stack.args.partitions, messages)),
    )


async def run_count(
    servers: str, sim: SimulatorServer, args: argparse.Namespace, count: int
) -> dict[str, Any]:
    stack = Stack(servers, sim, args)
    await create_topic(servers, stack.topic, args.partitions)
    expected = last_changes(stack.prefix, args.events, args.keys)
    workers = [stack.new_worker() for _ in range(count)]
    jobs_before = sim.state.stats()["jobs"]["total"]
    connector = aiohttp.TCPConnector(limit=64)
    async with (
        httpx.AsyncClient(timeout=10) as http,
        aiohttp.ClientSession(connector=connector) as webhooks,
    ):
        probes = WebhookLoad(webhooks, workers, args.webhook_rate)
        try:
            started = time.monotonic()
            for w in workers:
                spawn(w)
            # All N in the group before any change exists: start-up and the joins are not
            # in the figures.
            await wait_ready(http, workers)
            ready_at = time.monotonic()
            probes.start()
            # Start-up work that outlasts /ready (the groups' last joins, first timer runs)
            # ends before the idle CPU and the load's CPU are read.
            await asyncio.sleep(args.settle)
            # The workers' CPU while idle (webhooks only, timers, heartbeats): a fixed cost
            # per worker that a short run would otherwise read as a cost per event.
            idle_start = sum(cpu_seconds(w.proc.pid) for w in workers if w.proc)
            await asyncio.sleep(args.idle_seconds)  # the measuring window itself
            idle_cpu_per_s = (
                sum(cpu_seconds(w.proc.pid) for w in workers if w.proc) - idle_start
            ) / args.idle_seconds
            producing: asyncio.Task[float] | None = None
            if args.producer == "kcat":
                # Built before the window, produced while the workers are frozen: the
                # window (and the webhooks, paused meanwhile) starts as they go on.
                records = await asyncio.to_thread(build_load, stack)
                await probes.stop()
                produce_s = await produce_backlog(workers, stack, records)
                probes.start()
            cpu_start = sum(cpu_seconds(w.proc.pid) for w in workers if w.proc)
            window_start = time.time()
            cpu_started_at = time.monotonic()
            jobs_start = sim.state.stats()["jobs"]["total"]
            if args.producer == "python":
                producing = asyncio.create_task(produce_while_folding(stack))
            first: tuple[float, int] | None = None
            while True:
                for w in workers:
                    check_alive(w)
                if time.monotonic() - ready_at > args.timeout:
                    raise TimeoutError(f"not all applied in {args.timeout}s")
                applied = await stack.applied(http)
                now = time.monotonic()
                if applied > 0 and first is None:
                    first = (now, applied)
                if applied >= args.events:
                    break
                await asyncio.sleep(POLL_S)
            cpu = sum(cpu_seconds(w.proc.pid) for w in workers if w.proc) - cpu_start
            window_s = now - cpu_started_at
            cpu_window = {
                "start": window_start,
                "end": time.time(),
                "cpu_s": cpu,
                "events": args.events,
                "pids": [w.proc.pid for w in workers if w.proc],
            }
            idle_share = idle_cpu_per_s * window_s
            jobs_end = sim.state.stats()["jobs"]["total"]
            if producing is not None:
                produce_s = await producing
            await probes.stop()
            assert first is not None
            window = now - first[0]
            counted = args.events - first[1]
            ingest_s = now - ready_at
            delivered, deliver_s = await wait_delivered(sim, expected, args.deliver_timeout)
            # The state changelog's records (checkpoints write one per changed key, marks
            # one per key sent): how well checkpoints coalesced a key's changes.
            state_records = await changelog_records(
                servers, f"{stack.env['NORCE_SYNC_APP_ID']}-state.{stack.topic}"
            )
        finally:
            await probes.stop()
            await stack.stop_all()
    latencies = [x for p in probes.done for x in p.latencies]
    statuses: dict[str, int] = {}
    for p in probes.done:
        for code, n in p.statuses.items():
            statuses[str(code)] = statuses.get(str(code), 0) + n
    ticks = window_s / schedule_seconds(args.delta_schedule)
    return {
        "workers": count,
        "ready_seconds": round(ready_at - started, 2),
        "produce_seconds": round(produce_s, 2),
        "applied_at_first_poll": first[1],
        "ingest_window_seconds": round(window, 2),
        "events_per_s": round(counted / window) if window > 0 and counted else None,
        "all_applied_after_s": round(ingest_s, 2),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_100k": round(cpu * 100_000 / args.events, 3),
        "idle_cpu_s_per_s": round(idle_cpu_per_s, 3),
        "cpu_s_per_100k_less_idle": round((cpu - idle_share) * 100_000 / args.events, 3),
        "webhook": {
            "rate_per_s": args.webhook_rate,
            "statuses": statuses,
            "answer": latency_summary_ms(latencies),
        },
        "delta_jobs": jobs_end - jobs_start,
        "delta_ticks": round(ticks, 1),
        "delta_jobs_per_tick": round((jobs_end - jobs_start) / ticks, 2) if ticks >= 1 else None,
        "changelog_records": state_records,
        "jobs_total": sim.state.stats()["jobs"]["total"] - jobs_before,
        "delivered": delivered,
        "delivered_after_s": round(deliver_s, 1),
        **write_checks(sim, expected),
        "stop_timeouts": stack.stop_timeouts,
        "workdir": str(stack.tmp),
        "cpu_window": cpu_window,
    }


class OffsetWatch:
    """The projection's committed offset and the input's end offset of every partition,
    read every 0.2 s: (time, {partition: (committed, end)})."""

    def __init__(self, servers: str, group: str, topic: str, partitions: int) -> None:
        self.servers = servers
        self.group = group
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.samples: list[tuple[float, dict[int, tuple[int, int]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        admin = admin_client(Settings(), servers=self.servers)
        ends = consumer(Settings(), servers=self.servers, enable_auto_commit=False)
        await admin.start()
        await ends.start()
        try:
            while True:
                committed = await admin.list_consumer_group_offsets(self.group, partitions=self.tps)
                end = await ends.end_offsets(self.tps)
                now = time.monotonic()
                self.samples.append(
                    (
                        now,
                        {
                            tp.partition: (
                                committed[tp].offset if tp in committed else -1,
                                end[tp],
                            )
                            for tp in self.tps
                        },
                    )
                )
                await asyncio.sleep(POLL_S)
        finally:
            await ends.stop()
            await admin.close()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def after(self, t0: float, t1: float) -> dict[str, Any]:
        """Per partition, the longest time in [t0, t1] its committed offset stood still
        while input waited, and when it moved again. Stalls under ``STALL_S`` are the
        projection's ordinary batch rhythm (and the 0.2 s sampling), not a stop."""
        window = [(t, s) for t, s in self.samples if t0 <= t <= t1]
        stalls: dict[int, tuple[float, float | None]] = {}  # partition -> (length, resumed)
        for tp in self.tps:
            p = tp.partition
            still_since: float | None = None
            last = None
            longest: tuple[float, float | None] = (0.0, 0.0)
            for t, sample in window:
                committed, end = sample[p]
                if last is not None and committed > last:
                    if still_since is not None and t - still_since > longest[0]:
                        longest = (t - still_since, t - t0)
                    still_since = None
                elif committed < end and still_since is None:
                    still_since = t
                last = committed
            if still_since is not None and t1 - still_since > longest[0]:
                longest = (t1 - still_since, None)  # had not moved again by t1
            stalls[p] = longest
        real = [(length, at) for length, at in stalls.values() if length >= STALL_S]
        resumed: float | None = 0.0
        if any(at is None for _, at in real):
            resumed = None
        elif real:
            resumed = max(at for _, at in real if at is not None)
        return {
            "resumed_after_s": round(resumed, 2) if resumed is not None else None,
            "max_stall_s": round(max(length for length, _ in stalls.values()), 2),
            "partitions_stalled": len(real),
            "stall_s_per_partition": {str(p): round(v[0], 2) for p, v in stalls.items()},
        }


async def rebalance(servers: str, sim: SimulatorServer, args: argparse.Namespace) -> dict[str, Any]:
    stack = Stack(servers, sim, args)
    await create_topic(servers, stack.topic, args.partitions)
    watch = OffsetWatch(servers, stack.group, stack.topic, args.partitions)
    produced = 0
    stop_load = asyncio.Event()

    async def load() -> None:
        # Chunks every 0.25 s at --rebalance-rate; change i: key i % keys, price i + 1.
        nonlocal produced
        chunk = max(1, int(args.rebalance_rate / 4))
        start = time.monotonic()
        while not stop_load.is_set():
            batch = [stack.change(i) for i in range(produced, produced + chunk)]
            await produce_batched(servers, stack.topic, args.partitions, batch)
            produced += chunk
            delay = start + produced / args.rebalance_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    first = [stack.new_worker() for _ in range(args.rebalance_from)]
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            for w in first:
                spawn(w)
            await wait_ready(http, first)
            await watch.start()
            load_task = asyncio.create_task(load())
            phase = args.rebalance_seconds
            await asyncio.sleep(phase)  # the load runs: this is its length, not a wait
            joined_at = time.monotonic()
            joining = stack.new_worker()
            spawn(joining)
            join_ready = asyncio.create_task(seconds_to_ready(http, joining, joined_at))
            await asyncio.sleep(phase)
            left_at = time.monotonic()
            leaving = first[0]
            if args.leave == "kill":
                leaving.kill()
            else:
                try:
                    await asyncio.to_thread(leaving.stop)
                except subprocess.TimeoutExpired:  # killed after 60 s: counted
                    stack.stop_timeouts += 1
            await asyncio.sleep(phase)
            stop_load.set()
            await load_task
            joined_ready_s = await join_ready
            ended_at = time.monotonic()
            deadline = time.monotonic() + args.timeout
            while True:  # every produced change committed by the projection
                s = watch.samples[-1][1] if watch.samples else {}
                if s and all(c >= e for c, e in s.values()):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("the projection did not catch up")
                await asyncio.sleep(POLL_S)
            caught_up_s = time.monotonic() - ended_at
            expected = last_changes(stack.prefix, produced, args.keys)
            delivered, deliver_s = await wait_delivered(sim, expected, args.deliver_timeout)
        finally:
            await watch.stop()
            await stack.stop_all()
    return {
        "from_workers": args.rebalance_from,
        "rate_per_s": args.rebalance_rate,
        "phase_seconds": phase,
        "produced": produced,
        "leave_by": args.leave,
        "joining_worker_ready_after_s": joined_ready_s,
        "join": watch.after(joined_at, left_at),
        "leave": watch.after(left_at, ended_at),
        "caught_up_after_load_s": round(caught_up_s, 2),
        "delivered": delivered,
        "delivered_after_s": round(deliver_s, 1),
        **write_checks(sim, expected),
        "stop_timeouts": stack.stop_timeouts,
        "workdir": str(stack.tmp),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(n) for n in args.workers.split(",") if n]
    result: dict[str, Any] = {
        "bench": "scale",
        "events": args.events,
        "keys": args.keys,
        "partitions": args.partitions,
        "delta_schedule": args.delta_schedule,
        "load_average_before": os.getloadavg(),
        "runs": [],
    }
    with kafka_broker() as servers:
        sim_config = SimulatorConfig(port=0, workers=2, lead_time_s=0.2, token_rate_limit=False)
        async with SimulatorServer(sim_config) as sim:
            for round_no in range(args.repeat):
                for count in counts:
                    one = await run_count(servers, sim, args, count)
                    result["runs"].append({"round": round_no + 1, **one})
            if not args.no_rebalance:
                result["rebalance"] = await rebalance(servers, sim, args)
    result["load_average_after"] = os.getloadavg()
    windows = [
        {"label": f"r{r['round']}-w{r['workers']}", **r.pop("cpu_window")} for r in result["runs"]
    ]
    if args.cpu_profile:
        (Path(args.cpu_profile) / "windows.json").write_text(orjson.dumps(windows).decode())
    result.update(ratios(result["runs"]))
    return result


def ratios(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each round's CPU per event against that round's first worker count, and (with
    ``--repeat``) the median of each worker count's ratios over the rounds: on a machine
    whose one-worker figure itself moves ±10% from run to run, one round's ratio carries
    that noise, and the median of interleaved rounds much less of it."""
    out: dict[str, Any] = {"cpu_per_event_vs_first": [], "cpu_per_event_less_idle_vs_first": []}
    by_round: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        by_round.setdefault(r["round"], []).append(r)
    for rows in by_round.values():
        base, base_less = rows[0]["cpu_s_per_100k"], rows[0]["cpu_s_per_100k_less_idle"]
        out["cpu_per_event_vs_first"].append(
            {str(r["workers"]): round(r["cpu_s_per_100k"] / base, 3) for r in rows}
        )
        out["cpu_per_event_less_idle_vs_first"].append(
            {str(r["workers"]): round(r["cpu_s_per_100k_less_idle"] / base_less, 3) for r in rows}
        )
    if len(by_round) > 1:
        for name in ("cpu_per_event_vs_first", "cpu_per_event_less_idle_vs_first"):
            counts = out[name][0].keys()
            out[f"{name}_median"] = {
                c: round(statistics.median(r[c] for r in out[name]), 3) for c in counts
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma separated")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="rounds of the worker counts, interleaved (1,2,4,1,2,4,...); ratios per round "
        "and their medians",
    )  # fmt: skip
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--webhook-rate", type=float, default=50.0, help="POSTs/s in total")
    parser.add_argument(
        "--producer", choices=("kcat", "python"), default="kcat",
        help="kcat: the load is built before the window and produced by kcat in ~1 s (the "
        "workers fold a backlog); python: a thread of the bench builds and sends it during "
        "the window (the workers fold what arrives, ~35,000/s at best)",
    )  # fmt: skip
    parser.add_argument("--delta-schedule", default="5s")
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds from /ready (webhooks on) before the idle window (as bench_idle.py)",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=5.0, help="idle CPU window before the load"
    )
    parser.add_argument("--no-rebalance", action="store_true")
    parser.add_argument("--rebalance-from", type=int, default=2)
    parser.add_argument("--rebalance-rate", type=float, default=5_000.0, help="changes/s")
    parser.add_argument("--rebalance-seconds", type=float, default=30.0, help="each phase")
    parser.add_argument("--leave", choices=("stop", "kill"), default="stop")
    parser.add_argument("--worker-log-level", default="warning")
    parser.add_argument(
        "--cpu-profile",
        metavar="DIR",
        help="sample every worker's Python stack per 5 ms of its CPU (bench/cpu_sampler) "
        "into DIR, with each count's load window in DIR/windows.json; read with "
        "bench/cpu_profile.py",
    )
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--deliver-timeout", type=float, default=300.0)
    # SIGTERM (a `kill`, a CI timeout) unwinds like Ctrl-C, so the `finally` that stops
    # the workers runs: killed with the default handler, the bench left its workers
    # running, and they loaded the machine under the next bench (bench/RESULTS.md,
    # session 9).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(
        orjson.dumps(
            asyncio.run(run(parser.parse_args())),
            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
        ).decode()
    )


if __name__ == "__main__":
    main()

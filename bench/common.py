"""Shared pieces of the import benchmarks: Debezium price events, a batched producer, a
worker launched without waiting for it, its views and its memory as /proc reports it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka.admin import NewTopic
from aiokafka.partitioner import DefaultPartitioner

from streams.kafka import admin_client
from streams.kafka import producer as kafka_producer
from streams.settings import Settings
from tests.support.broker import ROOT, free_port
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.worker import WorkerProcess, child_pids


def price_change(part_no: str, price: float, lsn: int) -> tuple[bytes, bytes]:
    """One Debezium update of the ERP price table (no schema wrapper), as the bench and
    the e2e tests build it: (key, value) bytes."""
    row = price_row(part_no, price)
    return key_bytes(row, PRICE_KEY), orjson.dumps(envelope("prices", "u", row, lsn=lsn))


async def create_topic(servers: str, topic: str, partitions: int) -> None:
    admin = admin_client(Settings(), servers=servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def produce_batched(
    servers: str, topic: str, partitions: int, messages: Iterable[tuple[bytes, bytes]]
) -> int:
    """Send raw ``(key, value)`` pairs partitioned by key as Kafka's default partitioner
    does (the same key always lands on the same partition, as with Debezium), in record
    batches: a million events in seconds, not minutes. Returns the count sent."""
    producer = kafka_producer(
        Settings(), servers=servers, acks="all", max_batch_size=1024 * 1024, linger_ms=5
    )
    await producer.start()
    partitioner = DefaultPartitioner()
    every = list(range(partitions))
    builders: dict[int, Any] = {}
    futures: list[asyncio.Future[Any]] = []
    sent = 0
    try:
        for key, value in messages:
            partition = partitioner(key, every, every)
            builder = builders.get(partition) or producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                builder = producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
            builders[partition] = builder
            sent += 1
            if len(futures) >= 64:  # bound the batches in flight (and their memory)
                await asyncio.gather(*futures)
                futures.clear()
        for partition, builder in builders.items():
            if builder.record_count():
                futures.append(await producer.send_batch(builder, topic, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


def write_records(path: Path, messages: Iterable[tuple[bytes, bytes]]) -> int:
    """``(key, value)`` pairs as kcat reads them (``-K '\\t'``, one record a line), so a
    bench can build its load before its measuring window. Returns the count."""
    count = 0
    with path.open("wb") as out:
        for key, value in messages:
            if b"\t" in key or b"\n" in key or b"\n" in value:
                raise ValueError(f"record {count}: a tab or newline would split it for kcat")
            out.write(key + b"\t" + value + b"\n")
            count += 1
    return count


def produce_with_kcat(servers: str, topic: str, path: Path) -> float:
    """Produce the records of ``path`` (``write_records``) in file order with kcat, a
    native producer (apt-get install kcat): 400,000 price changes in ~1.1 s for ~0.7 CPU s,
    against ~5 s and ~5 CPU s through ``produce_batched`` (``bench/RESULTS.md``), so the
    producer is neither the limit of an ingest bench nor a competitor of its workers for
    the cores. Keys are partitioned with murmur2, as Kafka's Java clients and Debezium
    do; idempotence keeps each partition in file order across retries. Returns the
    seconds it took."""
    kcat = shutil.which("kcat")
    if kcat is None:
        raise SystemExit("kcat is not installed (apt-get install kcat)")
    started = time.monotonic()
    subprocess.run(
        [
            kcat, "-P", "-q", "-b", servers, "-t", topic, "-K", "\t",
            "-X", "topic.partitioner=murmur2_random",
            "-X", "enable.idempotence=true",
            "-X", "linger.ms=5",
            "-X", "batch.size=1048576",
            "-l", str(path),
        ],
        check=True,
        timeout=300,
    )  # fmt: skip
    return time.monotonic() - started


def spawn(worker: WorkerProcess) -> float:
    """Start the worker process without waiting for /ready (the caller times its start-up
    itself); returns the monotonic time it was started at. Same command as
    ``WorkerProcess.start``."""
    log = worker.log_path.open("ab")
    started = time.monotonic()
    worker.proc = subprocess.Popen(
        [sys.executable, "-m", worker.module, "worker", "-l", "info"],
        cwd=ROOT,
        env=worker.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return started


async def get_json(http: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    """The view's JSON, or None while the worker does not answer it (starting, stopping)."""
    try:
        response = await http.get(url)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return response.json()  # type: ignore[no-any-return]


async def is_ready(http: httpx.AsyncClient, worker: WorkerProcess) -> bool:
    try:
        return (await http.get(f"{worker.url}/ready")).status_code == 200
    except httpx.HTTPError:
        return False


def check_alive(worker: WorkerProcess) -> None:
    if worker.proc is not None and worker.proc.poll() is not None:
        raise RuntimeError(f"worker exited with {worker.proc.returncode}: {worker.tail()}")


def proc_status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB; empty once it is gone."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    except (OSError, ValueError):
        return {}
    return values


class MemorySampler:
    """Samples a process's VmRSS and VmHWM every ``every`` seconds in a task."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid = pid
        self.every = every
        self.peak_hwm_kib = 0
        self.peak_rss_kib = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> MemorySampler:
        self._task = asyncio.create_task(self._run())
        return self

    def sample(self) -> dict[str, int]:
        values = proc_status_kib(self.pid)
        self.peak_hwm_kib = max(self.peak_hwm_kib, values.get("VmHWM", 0))
        self.peak_rss_kib = max(self.peak_rss_kib, values.get("VmRSS", 0))
        return values

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        self.sample()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def latency_summary_ms(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


def start_simulator(port: int, *args: str) -> subprocess.Popen[bytes]:
    """The Norce simulator on ``port``, returned once it accepts connections (polled; it
    fails when the process exits first or does not answer within 60 s)."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "norce_simulator", "--port", str(port), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        if sim.poll() is not None:
            raise RuntimeError(f"the simulator exited with {sim.returncode} during start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return sim
        except OSError:
            if time.monotonic() > deadline:
                sim.terminate()
                raise RuntimeError("the simulator did not answer within 60 s") from None
            time.sleep(0.1)


LOOPS = ("asyncio", "uvloop")


def loop_env(loop: str) -> dict[str, str]:
    """Worker environment for the event loop ``loop``: Faust reads ``F_LOOP`` when it is
    imported (as its ``--loop`` option) and installs uvloop's policy. uvloop is no
    dependency of the project: ``.venv/bin/pip install uvloop`` to measure it."""
    if loop == "asyncio":
        return {}
    import importlib.util

    if importlib.util.find_spec("uvloop") is None:
        raise SystemExit("--loop uvloop: uvloop is not installed (.venv/bin/pip install uvloop)")
    return {"F_LOOP": "uvloop"}


def uses_uvloop(pid: int) -> bool:
    """Whether the process has uvloop's extension mapped (proof the option took)."""
    try:
        return "uvloop" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def intake_env(processes: int) -> dict[str, str]:
    """The worker's environment for ``processes`` intake processes on a free port of their
    own (none: the worker's web server takes the webhooks)."""
    if not processes:
        return {}
    return {
        "NORCE_SYNC_INTAKE_PROCESSES": str(processes),
        "NORCE_SYNC_INTAKE_PORT": str(free_port()),
    }


def intake_url(worker_url: str, env: dict[str, str]) -> str:
    """Where webhooks go: the intake processes' port when ``env`` has one."""
    port = env.get("NORCE_SYNC_INTAKE_PORT")
    return worker_url if port is None else f"http://127.0.0.1:{port}"


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (its children excluded)."""
    return sum(cpu_split(pid))


def cpu_with_children(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and its living children so far. A child
    that exits mid-run takes its seconds with it: the bench's children do not exit."""
    user, system = cpu_split(pid)
    for child in child_pids(pid):
        with contextlib.suppress(OSError):
            u, s = cpu_split(child)
            user, system = user + u, system + s
    return user, system

"""State at scale: one worker holding N distinct keys (default 1,000,000) in its
projection; its memory, and how fast a restart is ready.

    .venv/bin/python bench/bench_state_scale.py --keys 1000000 [--wipe-store]

1. N Debezium price updates of distinct keys (envelopes as bench_ingest builds them) are
   produced to an input topic of ``--partitions`` partitions before the worker starts.
2. The worker starts and ingests them (``GET /delta/erp/price`` polled every
   ``--ingest-poll`` s: with a million pending keys each GET counts them, so a fast poll
   would slow the worker it measures) until ``applied`` == N and ``pending`` == N (every
   key stored). Reported: ingest time from the first poll with ``applied`` > 0, and from
   process start; the worker's peak RSS (the highest VmHWM of /proc/<pid>/status,
   sampled every 0.2 s until it stops) and its VmRSS once ingest is done.
3. SIGTERM (a clean stop: the projection checkpoints) and a restart on the same data
   directory: time from process start to ``/ready`` 200, and to ``GET /delta/erp/price``
   answering ``pending`` == N (polled every 0.1 s), plus the restarted worker's peak RSS.
   With ``--wipe-store`` the local stores (``<data_dir>/<app_id>/projection``) are deleted
   before the restart, so the figure is the rebuild from the state changelog.

Goals (issue 10): peak RSS under 300 MB with 1,000,000 keys; restart ready with every key
pending in under 30 s. Issue 24, with ``--keys 10000000``: peak RSS under 500 MB, restart
ready with every key pending in under 10 s. Starts its own broker unless
KAFKA_BOOTSTRAP_SERVERS is set, the simulator in-process (no deltas run: the schedule
never fires); prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    MemorySampler,
    check_alive,
    create_topic,
    get_json,
    is_ready,
    mib,
    price_change,
    produce_batched,
    spawn,
)
from norce_simulator import SimulatorConfig, SimulatorServer  # noqa: E402
from tests.support.broker import kafka_broker  # noqa: E402
from tests.support.stack import worker_env, write_config  # noqa: E402
from tests.support.worker import WorkerProcess  # noqa: E402

RSS_GOAL_MIB = 300 * 1000 * 1000 / (1 << 20)  # 300 MB
RESTART_GOAL_S = 30.0
# Issue 24, with --keys 10000000: ready after restart in under 10 s, peak RSS under 500 MB.
RSS_GOAL_10M_MIB = 500 * 1000 * 1000 / (1 << 20)
RESTART_GOAL_10M_S = 10.0


async def ingest(worker: WorkerProcess, keys: int, poll: float, timeout: float) -> dict[str, Any]:
    """Start the worker and wait until every key is applied and pending."""
    url = f"{worker.url}/delta/erp/price"
    first: tuple[float, int] | None = None
    async with httpx.AsyncClient(timeout=60) as http:
        started = spawn(worker)
        assert worker.proc is not None
        sampler = MemorySampler(worker.proc.pid).start()
        try:
            while True:
                check_alive(worker)
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"{keys} keys not ingested in {timeout}s: {worker.tail()}")
                status = await get_json(http, url)
                now = time.monotonic()
                if status is not None:
                    if first is None and status["applied"] > 0:
                        first = (now, int(status["applied"]))
                    if status["applied"] >= keys and status["pending"] >= keys:
                        break
                await asyncio.sleep(poll)
            after = sampler.sample()
        finally:
            await sampler.stop()
        stop_started = time.monotonic()
        code = await asyncio.to_thread(worker.stop, timeout=120)
        stopped = time.monotonic() - stop_started
    assert first is not None
    window = now - first[0]
    return {
        # From the first poll that saw a change applied (a poll interval of resolution).
        "ingest_seconds": round(window, 2),
        "ingest_seconds_from_process_start": round(now - started, 2),
        "ingest_keys_per_s": round((keys - first[1]) / window) if window > 0 else None,
        "peak_rss_mib": mib(sampler.peak_hwm_kib),
        "rss_after_ingest_mib": mib(after.get("VmRSS", 0)),
        "sigterm_stop_seconds": round(stopped, 2),
        "sigterm_exit_code": code,
    }


async def restart(worker: WorkerProcess, keys: int, timeout: float) -> dict[str, Any]:
    """Start the worker again; time /ready 200 and pending == keys from process start."""
    url = f"{worker.url}/delta/erp/price"
    ready_at: float | None = None
    last_get_ms = 0.0
    async with httpx.AsyncClient(timeout=60) as http:
        started = spawn(worker)
        assert worker.proc is not None
        sampler = MemorySampler(worker.proc.pid).start()
        try:
            while True:
                check_alive(worker)
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"pending != {keys} after {timeout}s: {worker.tail()}")
                if ready_at is None and await is_ready(http, worker):
                    ready_at = time.monotonic()
                if ready_at is not None:
                    asked = time.monotonic()
                    status = await get_json(http, url)
                    now = time.monotonic()
                    last_get_ms = (now - asked) * 1000
                    if status is not None and status["pending"] >= keys:
                        break
                await asyncio.sleep(0.1)
            after = sampler.sample()
        finally:
            await sampler.stop()
        await asyncio.to_thread(worker.stop, timeout=120)
    assert ready_at is not None
    return {
        "restart_ready_seconds": round(ready_at - started, 2),
        "restart_all_pending_seconds": round(now - started, 2),
        "restart_delta_get_ms": round(last_get_ms, 1),
        "restart_peak_rss_mib": mib(sampler.peak_hwm_kib),
        "restart_rss_mib": mib(after.get("VmRSS", 0)),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    unique = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="bench-state-"))
    with kafka_broker() as servers:
        config, topics = write_config(tmp, unique)
        topic = topics["price"]
        await create_topic(servers, topic, args.partitions)
        started = time.perf_counter()
        await produce_batched(
            servers,
            topic,
            args.partitions,
            (price_change(f"SKU-{i:07d}", float(i % 10_000), 10_000 + i) for i in range(args.keys)),
        )
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
                NORCE_SYNC_LOG_LEVEL="warning",
            )
            worker = WorkerProcess("norce_sync", env, tmp / "w.log")
            try:
                first = await ingest(worker, args.keys, args.ingest_poll, args.timeout)
                if args.wipe_store:
                    shutil.rmtree(tmp / "data" / env["NORCE_SYNC_APP_ID"] / "projection")
                second = await restart(worker, args.keys, args.timeout)
            finally:
                if worker.proc is not None and worker.proc.poll() is None:
                    worker.kill()
    peak = max(first["peak_rss_mib"], second["restart_peak_rss_mib"])
    return {
        "bench": "state_scale",
        "keys": args.keys,
        "partitions": args.partitions,
        "wipe_store": args.wipe_store,
        "produce_seconds": round(produced, 2),
        **first,
        **second,
        "goal_peak_rss_under_300mb": peak < RSS_GOAL_MIB,
        "goal_restart_under_30s": second["restart_all_pending_seconds"] < RESTART_GOAL_S,
        "goal_10m_peak_rss_under_500mb": peak < RSS_GOAL_10M_MIB,
        "goal_10m_restart_under_10s": second["restart_all_pending_seconds"] < RESTART_GOAL_10M_S,
        "workdir": str(tmp),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--wipe-store",
        action="store_true",
        help="delete the local stores before the restart (rebuild from the changelog)",
    )
    parser.add_argument(
        "--ingest-poll", type=float, default=1.0, help="seconds between polls during ingest"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="per phase, seconds")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()

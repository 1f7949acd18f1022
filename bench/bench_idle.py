"""The fixed CPU cost of idle workers (issue 24): N workers of one app, as
``bench_scale.py`` starts them (8 partitions, deltas every 5 s, the simulator
in-process), no input and no webhooks; once all answer /ready and ``--settle`` seconds
passed, their user+system CPU (``/proc/<pid>/stat``, summed) over ``--seconds``.

    .venv/bin/python bench/bench_idle.py --workers 1
    .venv/bin/python bench/bench_idle.py --workers 4

One broker (``KAFKA_BOOTSTRAP_SERVERS``, else one of its own, stopped at the end).
Prints one JSON object: ``idle_cpu_s_per_s`` (all N together) and per worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_scale import Stack, cpu_seconds, wait_ready  # noqa: E402
from bench.common import create_topic, spawn  # noqa: E402
from norce_simulator import SimulatorConfig, SimulatorServer  # noqa: E402
from tests.support.broker import kafka_broker  # noqa: E402


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stack_args = argparse.Namespace(
        delta_schedule=args.delta_schedule,
        partitions=args.partitions,
        worker_log_level="warning",
        keys=100,
    )
    result: dict[str, Any] = {"bench": "idle", "load_average_before": os.getloadavg()}
    with kafka_broker() as servers:
        sim_config = SimulatorConfig(port=0, workers=2, lead_time_s=0.2, token_rate_limit=False)
        async with SimulatorServer(sim_config) as sim:
            stack = Stack(servers, sim, stack_args)
            await create_topic(servers, stack.topic, args.partitions)
            workers = [stack.new_worker() for _ in range(args.workers)]
            try:
                for w in workers:
                    spawn(w)
                async with httpx.AsyncClient(timeout=10) as http:
                    await wait_ready(http, workers)
                await asyncio.sleep(args.settle)  # start-up work (loads, joins) ends
                pids = [w.proc.pid for w in workers if w.proc]
                before = [cpu_seconds(p) for p in pids]
                started = time.monotonic()
                await asyncio.sleep(args.seconds)  # the measuring window itself
                elapsed = time.monotonic() - started
                used = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
            finally:
                await stack.stop_all()
    result.update(
        workers=args.workers,
        seconds=round(elapsed, 2),
        idle_cpu_s_per_s=round(sum(used) / elapsed, 4),
        per_worker_cpu_s_per_s=[round(u / elapsed, 4) for u in used],
        load_average_after=os.getloadavg(),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--delta-schedule", default="5s")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after /ready")
    parser.add_argument("--seconds", type=float, default=25.0, help="measuring window")
    print(orjson.dumps(asyncio.run(run(parser.parse_args())), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

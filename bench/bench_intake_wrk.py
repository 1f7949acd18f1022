"""Webhook intake with an external load generator (wrk, Debian's ``wrk`` package): accepted
``SkuPriceChangedNotification`` POSTs per second and wrk's latency percentiles on one
worker, each request for a PartNo of its own (a Lua counter), so the export window does
not fold them.

    .venv/bin/python bench/bench_intake_wrk.py --connections 64,128,256 --seconds 10

A real broker (``KAFKA_BOOTSTRAP_SERVERS``, else as the tests get one), the simulator
in-process and one worker process, as ``bench_export_latency.py`` starts them. For each
of ``--connections`` (one wrk run each, on the same worker, in the order given) prints
wrk's requests/s, non-2xx count and latency p50/p90/p99, and the worker's CPU per
accepted request (user and system apart: the system part is mostly loopback socket
writes) from the start of the wrk run until the export drained what it accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_export_latency import export_stats  # noqa: E402
from bench.common import (  # noqa: E402
    LOOPS,
    cpu_with_children,
    intake_env,
    intake_url,
    loop_env,
    uses_uvloop,
)
from norce_simulator import SimulatorServer  # noqa: E402
from tests.integration.export.support import (  # noqa: E402
    TOKEN,
    TOKEN_HEADER,
    sim_config,
    start_worker,
    stop_worker,
    worker_env,
)
from tests.support.broker import kafka_broker  # noqa: E402

# Each request its own PartNo: the counter is per wrk thread, the thread id keeps them
# apart, and the prefix (wrk's first script argument) each run of the bench. ``tid`` is
# the global ``setup`` sets in each thread's Lua state: a chunk-level ``local tid``
# (as this script had until session 8) shadows it, and every thread posted the same
# PartNos, so each entity came twice and the drain did half the work.
LUA = """
local counter = 0
local threads = 0
local prefix = "W"
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) wrk.method = "POST"; wrk.headers["%(header)s"] = "%(token)s";
  wrk.headers["Content-Type"] = "application/json"; prefix = args[1] or "W" end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil,
    '{"ClientId":1,"ApplicationId":2,"PartNo":"' .. prefix .. tid .. '-' .. counter .. '"}')
end
"""


def part_no_prefix(run: int) -> str:
    return f"R{run}W"


def parse_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)


def parse_wrk(out: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        if m:
            result[f"p{pct}_ms"] = parse_ms(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["requests_per_s"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in", out)
    result["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    result["socket_errors"] = m.group(1) if m else None
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    app_id = f"bench-wrk-{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    script = tmp / "post.lua"
    script.write_text(LUA % {"header": TOKEN_HEADER, "token": TOKEN})
    with kafka_broker() as servers:
        async with SimulatorServer(sim_config()) as sim:
            # Every PartNo wrk posts exists in Norce: a missing one is confirmed by a Query
            # lookup of its own before its tombstone, a dearer path than the usual export.
            per_thread = int(args.seed_per_second * (args.seconds + 2) / args.threads)
            connections = [int(c) for c in str(args.connections).split(",")]
            sim.state.seed(
                {"sku": [{"PartNo": f"{part_no_prefix(r)}{t}-{i}"}
                         for r in range(len(connections)) for t in range(args.threads)
                         for i in range(1, per_thread + 1)]
                        + [{"PartNo": f"warm0-{i}"} for i in range(1, 20_001)]}
            )  # fmt: skip
            intake = intake_env(args.intake_processes)
            env = worker_env(app_id, servers, sim, tmp / "data", **loop_env(args.loop), **intake)
            worker = await start_worker(env, tmp / "worker.log")
            assert worker.proc is not None
            pid = worker.proc.pid
            url = f"{intake_url(worker.url, intake)}/norce/events/SkuPriceChangedNotification"
            try:
                # A short warm-up: topics created, producer connected.
                warm = await asyncio.create_subprocess_exec(
                    wrk, "-t1", "-c4", "-d2s", "-s", str(script), url, "--", "warm",
                    stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                warm_out = parse_wrk((await warm.communicate())[0].decode())
                runs = []
                async with aiohttp.ClientSession() as http:
                    # the warm-up's events drained first: not counted in the first run
                    await drained(http, worker.url, warm_out.get("requests") or 0)
                    for run, count in enumerate(connections):
                        runs.append(
                            await one_run(args, wrk, script, url, pid, http, worker.url,
                                          count, part_no_prefix(run))
                        )  # fmt: skip
                uvloop_mapped = uses_uvloop(pid)
            finally:
                await stop_worker(worker)
    return {
        "bench": "intake_wrk",
        "loop": args.loop,
        "worker_uses_uvloop": uvloop_mapped,
        "intake_processes": args.intake_processes,
        "threads": args.threads,
        "seconds": args.seconds,
        "runs": runs,
    }


async def drained(http: aiohttp.ClientSession, worker_url: str, events: int) -> dict[str, Any]:
    """The export's stats once it has read ``events`` and holds none (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        stats = await export_stats(http, worker_url)
        done = stats["events_in"] >= events and stats["pending"] == 0
        if done or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.1)


async def one_run(
    args: argparse.Namespace,
    wrk: str,
    script: Path,
    url: str,
    pid: int,
    http: aiohttp.ClientSession,
    worker_url: str,
    connections: int,
    prefix: str,
) -> dict[str, Any]:
    """One wrk run at ``connections``; the worker's CPU counted until the export has
    flushed what this run posted (intake and its drain, per accepted request)."""
    spy = None
    if args.profile:  # py-spy on the worker while wrk runs (raw collapsed stacks)
        spy = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
            "--rate", "200", "--duration", str(args.seconds), "--format", "raw",
            "--output", f"{args.profile}.c{connections}", "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    before = await export_stats(http, worker_url)
    events_before = before["events_in"]
    user_before, sys_before = cpu_with_children(pid)
    proc = await asyncio.create_subprocess_exec(
        wrk, f"-t{args.threads}", f"-c{connections}", f"-d{args.seconds}s",
        "--latency", "-s", str(script), url, "--", prefix,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    parsed = parse_wrk(out.decode())
    accepted = (parsed.get("requests") or 0) - parsed["non_2xx"]
    stats = await drained(http, worker_url, events_before + accepted)
    user_after, sys_after = cpu_with_children(pid)
    delta = {k: stats[k] - before[k] for k in ("entities", "lookup_groups", "lookups")}
    if spy is not None:
        await spy.wait()
    user, system = user_after - user_before, sys_after - sys_before
    per = (lambda cpu: round(cpu * 1000 / accepted, 3)) if accepted else (lambda cpu: None)
    return {
        "connections": connections,
        **parsed,
        "accepted_per_s": round(accepted / args.seconds, 1),
        "worker_cpu_ms_per_request": per(user + system),
        "worker_user_ms_per_request": per(user),
        "worker_sys_ms_per_request": per(system),
        "load_average_1m": round(os.getloadavg()[0], 2),
        # Query requests: one per group (and page); more than groups are single lookups
        # (an entity missing from its group's answer, confirmed before its tombstone)
        "export": delta,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--connections", default="64",
        help="wrk connections; comma separated for several runs on the same worker",
    )  # fmt: skip
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="the worker's event loop")
    parser.add_argument(
        "--seed-per-second", type=int, default=10_000,
        help="SKUs seeded in the simulator per second of the run (wrk's PartNos)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", help="py-spy the worker (200 Hz) while wrk runs, to FILE.c<connections>"
    )
    parser.add_argument(
        "--intake-processes", type=int, default=0,
        help="the worker's NORCE_SYNC_INTAKE_PROCESSES: wrk posts to their port, and their "
        "CPU counts with the worker's",
    )  # fmt: skip
    print(orjson.dumps(asyncio.run(run(parser.parse_args())), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

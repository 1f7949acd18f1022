"""Webhook intake with an external load generator (wrk, Debian's ``wrk`` package): accepted
``SkuPriceChangedNotification`` POSTs per second and wrk's latency percentiles on one
worker, each request for a PartNo of its own (a Lua counter), so the export window does
not fold them.

    .venv/bin/python bench/bench_intake_wrk.py --connections 64 --seconds 10 --loop asyncio

A real broker (``KAFKA_BOOTSTRAP_SERVERS``, else as the tests get one), the simulator
in-process and one worker process, as ``bench_export_latency.py`` starts them. Prints one
JSON object: wrk's requests/s, non-2xx count and latency p50/p90/p99, and the worker's
CPU per accepted request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_export_latency import cpu_seconds  # noqa: E402
from bench.common import LOOPS, loop_env, uses_uvloop  # noqa: E402
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

# Each request its own PartNo: the counter is per wrk thread, the thread id keeps them apart.
LUA = """
local counter = 0
local tid = 0
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) wrk.method = "POST"; wrk.headers["%(header)s"] = "%(token)s";
  wrk.headers["Content-Type"] = "application/json" end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil,
    '{"ClientId":1,"ApplicationId":2,"PartNo":"W' .. tid .. '-' .. counter .. '"}')
end
"""


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
            sim.state.seed(
                {"sku": [{"PartNo": f"W{t}-{i}"} for t in range(args.threads)
                         for i in range(1, per_thread + 1)]}
            )  # fmt: skip
            env = worker_env(app_id, servers, sim, tmp / "data", **loop_env(args.loop))
            worker = await start_worker(env, tmp / "worker.log")
            assert worker.proc is not None
            pid = worker.proc.pid
            url = f"{worker.url}/norce/events/SkuPriceChangedNotification"
            try:
                # A short warm-up: topics created, producer connected.
                warm = await asyncio.create_subprocess_exec(
                    wrk, "-t1", "-c4", "-d2s", "-s", str(script), url,
                    stdout=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                await warm.wait()
                spy = None
                if args.profile:  # py-spy on the worker while wrk runs (raw collapsed stacks)
                    spy = await asyncio.create_subprocess_exec(
                        str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                        "--rate", "200", "--duration", str(args.seconds), "--format", "raw",
                        "--output", args.profile, "--nonblocking",
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    )  # fmt: skip
                cpu_before = cpu_seconds(pid)
                proc = await asyncio.create_subprocess_exec(
                    wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s",
                    "--latency", "-s", str(script), url,
                    stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                out, _ = await proc.communicate()
                worker_cpu = cpu_seconds(pid) - cpu_before
                uvloop_mapped = uses_uvloop(pid)
                if spy is not None:
                    await spy.wait()
            finally:
                await stop_worker(worker)
    parsed = parse_wrk(out.decode())
    accepted = (parsed.get("requests") or 0) - parsed["non_2xx"]
    return {
        "bench": "intake_wrk",
        "loop": args.loop,
        "worker_uses_uvloop": uvloop_mapped,
        "threads": args.threads,
        "connections": args.connections,
        "seconds": args.seconds,
        **parsed,
        "accepted_per_s": round(accepted / args.seconds, 1),
        "worker_cpu_ms_per_request": round(worker_cpu * 1000 / accepted, 3) if accepted else None,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="the worker's event loop")
    parser.add_argument(
        "--seed-per-second", type=int, default=10_000,
        help="SKUs seeded in the simulator per second of the run (wrk's PartNos)",
    )  # fmt: skip
    parser.add_argument("--profile", help="py-spy the worker (200 Hz) while wrk runs, to this file")
    print(orjson.dumps(asyncio.run(run(parser.parse_args())), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

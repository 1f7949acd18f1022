"""Bench: the reference check of a delta of new prices against a large catalogue.

A simulator (a process of its own) holds ``--skus`` SKUs. A delta of ``--rows`` new prices,
each for an existing SKU (the worst case: every reference is looked up, none is cached),
is timed twice over real HTTP:

- the delta without checks: the ``ImportSkuPriceLists`` POST of the rows and the job
  until Norce (the simulator, lead time 0) reports it succeeded;
- the reference check the service now runs first (``agents.imports.references.Lookups``:
  grouped ``or`` filters with ``$select`` of the key, a fresh cache).

Prints one JSON line: Query calls, rows per call, both wall times and the overhead, and
each side's CPU during the check (steadier than wall time on a shared machine). With
``--repeat N`` the delta and the cold check run N times (new prices, a fresh cache each
time): the first round's figures, then each round's check and ratio and their median.

    .venv/bin/python bench/bench_references.py [--skus 1000000] [--rows 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.imports.references import Lookups, ReferenceCache  # noqa: E402
from norce.client import NorceClient  # noqa: E402
from norce.config import NorceCredentials, NorceEndpoints  # noqa: E402
from norce.connect import ImportKind  # noqa: E402
from norce.connect_header import ConnectHeader  # noqa: E402
from norce_simulator import SimulatorConfig, SimulatorServer  # noqa: E402

DEMO = NorceCredentials(
    client_id="norce-sync-demo",
    client_secret="demo-secret",
    application_id="demo-app",
    scope="playground",
)


async def serve(port: int, skus: int, lead_time_s: float) -> None:
    """The simulator with a catalogue of ``skus`` SKUs, written straight into its state
    (seeding through validation would take minutes at a million)."""
    config = SimulatorConfig(
        port=port,
        lead_time_s=lead_time_s,
        token_rate_limit=False,
        record_history=False,
        workers=2,
    )
    async with SimulatorServer(config) as sim:
        table = sim.state.items["sku"]
        for n in range(skus):
            part_no = f"SKU-{n:07d}"
            table[part_no] = {"PartNo": part_no, "IsActive": True}
        sim.state.generation += 1
        print("ready", flush=True)
        await asyncio.Event().wait()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str, args: argparse.Namespace, sim_pid: int) -> dict[str, object]:
    # New prices for SKUs spread over the catalogue: none is cached, all exist.
    step = max(1, args.skus // args.rows)
    async with NorceClient(DEMO, NorceEndpoints(base_url=url)) as norce:
        rounds = []
        for round_no in range(args.repeat):  # each round: new prices, a fresh cache
            rows = [
                {"PartNo": f"SKU-{n * step:07d}", "PriceListCode": "STD", "QuantityBreak": 1,
                 "PriceSale": 10.0 + (n + round_no) % 100, "CurrencyCode": "SEK"}
                for n in range(args.rows)
            ]  # fmt: skip
            rounds.append(await one_round(norce, rows, args, sim_pid))
    first = rounds[0]
    out: dict[str, object] = {
        "skus": args.skus,
        "rows": args.rows,
        "group_size": args.group_size,
        "concurrency": args.concurrency,
        "lead_time_s": args.lead_time,
        **first,
        "rows_per_query_call": round(args.rows / first["query_calls"], 1),
    }
    if args.repeat > 1:  # wall time moves with a shared machine's load: each round, median
        for name in ("reference_check_s", "overhead_vs_delta_until_succeeded"):
            each = [r[name] for r in rounds]
            out[f"{name}_each"] = each
            out[f"{name}_median"] = round(statistics.median(each), 3)
    return out


async def one_round(
    norce: NorceClient, rows: list[dict[str, object]], args: argparse.Namespace, sim_pid: int
) -> dict[str, float]:
    """The delta without checks, then the cold check of its rows and the warm one."""
    header = ConnectHeader(account_id=1, sku_price_list_fields_that_are_set=["PriceSale"])
    started = time.perf_counter()
    response = await norce.connect.import_items(ImportKind.SKU_PRICE_LISTS, header, rows)
    posted = time.perf_counter() - started
    await norce.connect.wait_for_job(response.job_id_int, poll_interval=0.02)
    delta_s = time.perf_counter() - started
    lookups = Lookups(
        norce.query,
        ReferenceCache(3600, 30),
        group_size=args.group_size,
        max_url=args.max_url,
        concurrency=args.concurrency,
    )
    started, cpu, sim_cpu = time.perf_counter(), time.process_time(), cpu_s(sim_pid)
    reasons = await lookups.missing("price", rows)
    check_s = time.perf_counter() - started
    # CPU of each side during the check: steadier than wall time on a shared machine.
    check_cpu, check_sim_cpu = time.process_time() - cpu, cpu_s(sim_pid) - sim_cpu
    # The next delta of the same SKUs (another price change): the positive cache.
    again = Lookups(norce.query, lookups.cache)
    started = time.perf_counter()
    await again.missing("price", rows)
    warm_s = time.perf_counter() - started
    assert not any(reasons), "every SKU exists: nothing may be held back"
    return {
        "query_calls": lookups.query_calls,
        "delta_post_s": round(posted, 3),
        "delta_until_succeeded_s": round(delta_s, 3),
        "reference_check_s": round(check_s, 3),
        "overhead_vs_delta_post": round(check_s / posted, 3),
        "overhead_vs_delta_until_succeeded": round(check_s / delta_s, 3),
        "check_cpu_client_s": round(check_cpu, 3),
        "check_cpu_simulator_s": round(check_sim_cpu, 3),
        "warm_query_calls": again.query_calls,
        "warm_reference_check_s": round(warm_s, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--group-size", type=int, default=100)
    parser.add_argument("--max-url", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds (delta + cold check) in one run"
    )
    parser.add_argument(
        "--lead-time", type=float, default=1.0, help="the simulator's job lead time (its default)"
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.skus, args.lead_time))
        return
    # The simulator in a process of its own: Norce's CPU is not the worker's.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sim = subprocess.Popen(
        [
            *(sys.executable, __file__, "--serve", str(port)),
            *("--skus", str(args.skus), "--lead-time", str(args.lead_time)),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert sim.stdout is not None
        if sim.stdout.readline().strip() != b"ready":  # blocks until the catalogue is in
            raise RuntimeError("the simulator did not start")
        result = asyncio.run(measure(f"http://127.0.0.1:{port}", args, sim.pid))
        print(orjson.dumps(result).decode())
    finally:
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()

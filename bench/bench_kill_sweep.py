"""Long-form SIGKILL sweep: a worker killed at random moments while change data arrives in
waves, deltas run on a 1 s schedule and 20% of Connect calls fail; then faults off and one
worker delivers everything. Counts what Norce (the simulator) received.

    .venv/bin/python bench/bench_kill_sweep.py                          # 10 kills, faults
    .venv/bin/python bench/bench_kill_sweep.py --no-kills --no-faults   # the control run

Load: ``--keys`` (5,000) x ``--versions`` (20) = 100,000 Debezium price updates, one wave
per version (every key once, newest price = key * 1000 + version), produced while a
worker runs. After each wave the script waits a random 0-3 s; after ``--kills`` (10) of the
waves, drawn at random, it then SIGKILLs the worker and starts a new one (so kills land
mid-ingest, mid-checkpoint, mid-delta or while idle). ``max_items_per_job`` 1000, deltas
every second, Connect calls failing with 503 at ``--error-rate`` (0.2). After the last
wave: faults off, and the running worker delivers until nothing is pending or open.

Reported (goals of issue 10): ``lost_keys`` (not at their newest value in the simulator;
0), ``regressed_keys`` (a key's write history goes back to an older value; 0),
``writes`` (rows Norce stored), ``duplicate_writes`` (a write equal to the key's previous
written value) and their share (at most 10%; the control run at most 1%). Modelled on
tests/e2e/test_import_kill_sweep.py. Starts its own broker unless KAFKA_BOOTSTRAP_SERVERS
is set, the simulator in-process; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import create_topic, price_change, produce_batched  # noqa: E402
from norce_simulator import SimulatorConfig, SimulatorServer  # noqa: E402
from tests.support.broker import kafka_broker  # noqa: E402
from tests.support.stack import (  # noqa: E402
    deliver,
    norce_prices,
    start_worker,
    worker_env,
    write_config,
)


def part_no(n: int) -> str:
    return f"SKU-{n:06d}"


def price(n: int, version: int) -> float:
    return float(n * 1000 + version)


def wave(keys: int, version: int) -> list[tuple[bytes, bytes]]:
    return [price_change(part_no(n), price(n, version), 1_000_000 + version) for n in range(keys)]


def write_counts(sim: SimulatorServer, keys: int) -> dict[str, Any]:
    writes = duplicates = regressed = 0
    for n in range(keys):
        written = [
            h["values"]["PriceSale"] for h in sim.state.history("price", f"{part_no(n)}|STD|1")
        ]
        writes += len(written)
        duplicates += sum(1 for a, b in itertools.pairwise(written) if a == b)
        regressed += any(b < a for a, b in itertools.pairwise(written))
    return {
        "writes": writes,
        "duplicate_writes": duplicates,
        "duplicate_share": round(duplicates / writes, 4) if writes else None,
        "regressed_keys": regressed,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.kills > args.versions:
        raise SystemExit("--kills must not exceed --versions (at most one kill per wave)")
    if args.versions >= 1000:
        raise SystemExit("--versions must stay under 1000 (prices encode key and version)")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    # Drawn in the control run too, so the same seed paces both runs alike.
    drawn = set(rng.sample(range(1, args.versions + 1), args.kills))
    kill_after = set() if args.no_kills else drawn
    unique = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="bench-kill-sweep-"))
    log = tmp / "worker.log"
    started = time.monotonic()
    with kafka_broker() as servers:
        config, topics = write_config(
            tmp, unique, delta_schedule="1s", max_items_per_job=args.max_items_per_job
        )
        topic = topics["price"]
        await create_topic(servers, topic, args.partitions)
        sim_config = SimulatorConfig(port=0, workers=2, lead_time_s=0.2, token_rate_limit=False)
        async with SimulatorServer(sim_config) as sim:
            if not args.no_faults:
                sim.state.set_faults({"connect": {"error_rate": args.error_rate, "status": 503}})
            env = worker_env(
                servers,
                unique,
                sim.url,
                config,
                tmp,
                NORCE_SYNC_TOPIC_PARTITIONS=str(args.partitions),
                NORCE_SYNC_BROKER_SESSION_TIMEOUT_S="10",
                NORCE_SYNC_ORPHAN_GRACE_S="1",
            )
            worker = await start_worker("norce_sync", env, log)
            killed = 0
            try:
                for version in range(1, args.versions + 1):
                    await produce_batched(servers, topic, args.partitions, wave(args.keys, version))
                    await asyncio.sleep(rng.uniform(0.0, 3.0))
                    if version in kill_after:
                        worker.kill()
                        killed += 1
                        worker = await start_worker("norce_sync", env, log)
                load_seconds = time.monotonic() - started
                sim.state.set_faults({})
                expected = {part_no(n): price(n, args.versions) for n in range(args.keys)}
                delivered = True
                delivery_started = time.monotonic()
                try:
                    await deliver(worker, sim, expected, timeout=args.deliver_timeout)
                except TimeoutError:
                    delivered = False
                delivery_seconds = time.monotonic() - delivery_started
            finally:
                await asyncio.to_thread(worker.stop)
            prices = norce_prices(sim)
            lost = sum(1 for key, value in expected.items() if prices.get(key) != value)
            counts = write_counts(sim, args.keys)
    return {
        "bench": "kill_sweep",
        "seed": seed,
        "keys": args.keys,
        "versions": args.versions,
        "changes": args.keys * args.versions,
        "kills": killed,
        "connect_error_rate": 0.0 if args.no_faults else args.error_rate,
        "max_items_per_job": args.max_items_per_job,
        "delivered": delivered,
        "lost_keys": lost,
        **counts,
        "load_seconds": round(load_seconds, 1),
        "delivery_seconds": round(delivery_seconds, 1),
        "workdir": str(tmp),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=5_000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--max-items-per-job", type=int, default=1_000)
    parser.add_argument("--error-rate", type=float, default=0.2)
    parser.add_argument("--no-kills", action="store_true", help="control run: no SIGKILLs")
    parser.add_argument("--no-faults", action="store_true", help="control run: no Connect faults")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--deliver-timeout", type=float, default=600.0)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()

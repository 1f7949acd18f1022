"""SIGKILL sweep: a worker killed again and again while change data flows in, deltas run
on their schedule and 20% of Connect calls fail. Every key ends at its newest value in
Norce, and no key's write history ever goes back to an older value."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
from pathlib import Path

import pytest

from norce_simulator import SimulatorConfig, SimulatorServer
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce
from tests.support.stack import (
    FAULTY,
    deliver,
    norce_prices,
    seed_skus,
    start_worker,
    wait_until,
    worker_env,
    write_config,
)
from tests.support.worker import SESSION_TIMEOUT_S

pytestmark = pytest.mark.e2e

KEYS = 1_000
# Each round: the worker starts, a version of every key is produced, and the worker dies:
# inside a checkpoint (after the changelog was acknowledged but before the store write;
# after the store write but before the offset commit), or at a random moment once the
# round's first delta job reached Norce (so deltas are in flight: intents, POSTs, marks).
ROUNDS: list[tuple[str, int]] = [
    ("after_produce", 2),
    ("random", 0),
    ("after_store", 3),
    ("random", 0),
    ("random", 0),
    ("after_produce", 5),
]
VERSIONS = len(ROUNDS) + 1  # 7,000 changes


def change(n: int, version: int) -> tuple[bytes, dict]:
    row = price_row(f"SKU-{n:06d}", float(n * 100 + version))
    return key_bytes(row, PRICE_KEY), envelope("prices", "u", row, lsn=1_000_000 + version)


async def test_sigkill_sweep_loses_nothing_and_never_regresses(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("KILL_SWEEP_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill sweep seed {seed}")
    config, topics = write_config(tmp_path, unique, delta_schedule="1s", max_items_per_job=400)
    sim_config = SimulatorConfig(port=0, workers=2, lead_time_s=0.2, token_rate_limit=False)
    async with SimulatorServer(sim_config) as sim:
        seed_skus(sim, (f"SKU-{n:06d}" for n in range(KEYS)))
        sim.state.set_faults({"connect": {"error_rate": 0.2, "status": 503}})
        env = worker_env(
            kafka_servers,
            unique,
            sim.url,
            config,
            tmp_path,
            NORCE_SYNC_BROKER_SESSION_TIMEOUT_S=SESSION_TIMEOUT_S,
            NORCE_SYNC_ORPHAN_GRACE_S="1",
            # Fetches of at most 50 changes and a checkpoint once 120 changed keys are
            # held: each checkpoint folds several fetches (the budget's path), and one
            # holds at most 169 keys, so a round's 1,000 keys take at least 6 checkpoints,
            # more than any crash point below needs (however deltas' marks and the
            # interval fall).
            NORCE_SYNC_PROJECTION_BATCH_MAX="50",
            NORCE_SYNC_PROJECTION_CHECKPOINT_KEYS="120",
        )
        topic = topics["price"]
        kills = rounds_with_jobs = 0
        for round_no, (point, at) in enumerate(ROUNDS, start=1):
            crash = {}
            if point != "random":
                crash = {
                    "TEST_CRASH_IN_CHECKPOINT": point,
                    "TEST_CRASH_AT_CHECKPOINT": str(at),
                }
            worker = await start_worker(FAULTY, {**env, **crash}, tmp_path / "worker.log")
            jobs_before = sim.state.stats()["jobs"]["total"]
            await produce(kafka_servers, topic, [change(n, round_no) for n in range(KEYS)])
            if point == "random":
                try:
                    await wait_until(
                        lambda before=jobs_before: sim.state.stats()["jobs"]["total"] > before,
                        timeout=60,
                        what="a delta job this round",
                    )
                    rounds_with_jobs += 1
                except TimeoutError:
                    pass  # killed anyway; counted below
                await asyncio.sleep(rng.uniform(0.0, 2.0))
                worker.kill()
            else:
                # It kills itself inside its checkpoint; the load guarantees it gets there.
                await asyncio.to_thread(worker.proc.wait, 120)
            assert worker.proc.returncode == -9, worker.tail()
            kills += 1
        assert kills >= 3
        # The sweep must have killed workers while deltas were running, not only ingest.
        assert rounds_with_jobs >= 2, f"only {rounds_with_jobs} rounds posted a delta job"

        # The last version arrives while no worker runs; then one recovers and delivers,
        # without its local store: every partition is rebuilt from its changelog (the
        # rounds above restarted on the store; this covers the other path).
        await produce(kafka_servers, topic, [change(n, VERSIONS) for n in range(KEYS)])
        shutil.rmtree(tmp_path / "data" / env["NORCE_SYNC_APP_ID"] / "projection")
        sim.state.set_faults({})
        final = await start_worker("norce_sync", env, tmp_path / "worker.log")
        expected = {f"SKU-{n:06d}": float(n * 100 + VERSIONS) for n in range(KEYS)}
        try:
            await deliver(final, sim, expected, timeout=240)
        except TimeoutError:
            prices = norce_prices(sim)
            wrong = {k: (prices.get(k), v) for k, v in expected.items() if prices.get(k) != v}
            raise AssertionError(
                f"{len(wrong)} keys not at their newest value, e.g. {list(wrong.items())[:5]}"
            ) from None
        finally:
            final.stop()

        writes = duplicates = 0
        for n in range(KEYS):
            written = [
                h["values"]["PriceSale"] for h in sim.state.history("price", f"SKU-{n:06d}|STD|1")
            ]
            assert written == sorted(written), f"SKU-{n:06d} went back: {written}"
            writes += len(written)
            duplicates += sum(1 for a, b in itertools.pairwise(written) if a == b)
        share = duplicates / writes
        jobs = sim.state.stats()["jobs"]["total"]
        print(
            f"kill sweep: {kills} kills ({rounds_with_jobs} with deltas in flight), {jobs} jobs, "
            f"{writes} writes, {duplicates} duplicates ({share:.1%})"
        )

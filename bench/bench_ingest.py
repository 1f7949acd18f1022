"""Ingest throughput: change events per second through one worker (decode, map, re-key,
fold into the state and pending tables), next to a plain aiokafka consumer reading the
same topic in the same run.

    .venv/bin/python bench/bench_ingest.py --events 50000

Starts its own broker (tools/kafka) unless KAFKA_BOOTSTRAP_SERVERS is set, and the
simulator in-process; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer  # noqa: E402

from norce_simulator import SimulatorConfig, SimulatorServer  # noqa: E402
from tests.support.broker import kafka_broker  # noqa: E402
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row  # noqa: E402
from tests.support.kafka import produce  # noqa: E402
from tests.support.stack import (  # noqa: E402
    delta_status,
    start_worker,
    worker_env,
    write_config,
)


async def plain_consumer_rate(servers: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def run(events: int, keys: int, partitions: int) -> dict[str, float | int]:
    unique = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    with kafka_broker() as servers:
        config, topics = write_config(tmp, unique)
        sim_config = SimulatorConfig(port=0, token_rate_limit=False, record_history=False)
        async with SimulatorServer(sim_config) as sim:
            env = worker_env(
                servers, unique, sim.url, config, tmp, NORCE_SYNC_TOPIC_PARTITIONS=str(partitions)
            )
            worker = await start_worker(
                "streams", {**env, "NORCE_SYNC_LOG_LEVEL": "warning"}, tmp / "w.log"
            )
            try:
                messages = []
                for i in range(events):
                    row = price_row(f"SKU-{i % keys:06d}", float(i))
                    messages.append(
                        (key_bytes(row, PRICE_KEY), envelope("prices", "u", row, lsn=10_000 + i))
                    )
                started = time.perf_counter()
                await produce(servers, topics["price"], messages)
                produced = time.perf_counter() - started
                while (await delta_status(worker, "erp", "price"))["applied"] < events:
                    await asyncio.sleep(0.2)
                worker_seconds = time.perf_counter() - started
            finally:
                worker.stop()
            plain = await plain_consumer_rate(servers, topics["price"], events)
    worker_rate = events / worker_seconds
    return {
        "events": events,
        "keys": keys,
        "partitions": partitions,
        "produce_seconds": round(produced, 2),
        "worker_seconds": round(worker_seconds, 2),
        "worker_events_per_s": round(worker_rate),
        "plain_consumer_events_per_s": round(plain),
        "ratio_worker_to_plain": round(worker_rate / plain, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.events, args.keys, args.partitions))))


if __name__ == "__main__":
    main()

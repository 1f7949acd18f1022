"""The intake's produce hand-off alone, old path against new, in one process and the same
minutes: CPU microseconds of this process per acknowledged record.

- ``send_acked``: Faust's ``Producer.send`` and a shielded delivery future (the intake's
  produce until session 8);
- ``direct``: :class:`streams.direct_send.DirectSend` (straight to aiokafka's producer);

each inside ``asyncio.timeout`` as the intake calls it, ``--in-flight`` webhooks at once
(as many wrk connections), keys ``sku:B<n>`` (a partition computed per record: with
``--aiokafka-partitioner`` aiokafka's own ``_partition`` instead of the project's). The
blocks alternate (``--rounds``), so the machine's load hits both alike; CPU time, not
wall time, is the figure. Needs a broker (``KAFKA_BOOTSTRAP_SERVERS``, else as the tests
get one).

    .venv/bin/python bench/bench_intake_produce.py --records 20000 --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.app import create_app  # noqa: E402
from streams.direct_send import DirectSend  # noqa: E402
from streams.kafka import TopicTrackingProducer, app_producer, send_acked  # noqa: E402
from streams.settings import Settings  # noqa: E402
from tests.support.broker import kafka_broker  # noqa: E402
from tests.support.kafka import create_topics  # noqa: E402

Produce = Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[Any]]


async def block(produce: Produce, topic: str, records: int, in_flight: int, start: int) -> float:
    """CPU seconds of this process for ``records`` acknowledged produces."""
    counter = iter(range(start, start + records))
    value = orjson.dumps({"event_type": "SkuPriceChangedNotification", "body": {"x": 1}})

    async def one_connection() -> None:
        for n in counter:
            headers = [("norce-event-type", b"SkuPriceChangedNotification"), ("received-at", b"1")]
            async with asyncio.timeout(3.0):
                await produce(topic, f"sku:B{n}".encode(), value, headers)

    cpu = time.process_time()
    await asyncio.gather(*(one_connection() for _ in range(in_flight)))
    return time.process_time() - cpu


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.aiokafka_partitioner:  # the project's producer without its _partition
        del TopicTrackingProducer._partition
    unique = uuid.uuid4().hex[:8]
    with kafka_broker() as servers:
        topic = f"bench-produce-{unique}"
        await create_topics(servers, [topic], partitions=args.partitions)
        settings = Settings(  # type: ignore[call-arg]
            app_id=f"bench-produce-{unique}",
            broker=f"kafka://{servers}",
            data_dir=Path(tempfile.mkdtemp(prefix="bench-produce-")),
        )
        app = create_app(settings)
        await app.maybe_start_producer()
        assert isinstance(app_producer(app), AIOKafkaProducer)
        paths: dict[str, Produce] = {
            "send_acked": functools.partial(send_acked, app),
            "direct": DirectSend(app),
        }
        try:
            for produce in paths.values():  # metadata, connection, warm caches
                await block(produce, topic, 2000, args.in_flight, 0)
            cpu: dict[str, list[float]] = {name: [] for name in paths}
            start = 10_000
            for _ in range(args.rounds):
                for name, produce in paths.items():
                    seconds = await block(produce, topic, args.records, args.in_flight, start)
                    cpu[name].append(seconds * 1e6 / args.records)
                    start += args.records
        finally:
            await app.producer.stop()
    return {
        "bench": "intake_produce",
        "records_per_block": args.records,
        "in_flight": args.in_flight,
        "partitions": args.partitions,
        "partitioner": "aiokafka" if args.aiokafka_partitioner else "project",
        "cpu_us_per_record": {k: [round(v, 2) for v in vs] for k, vs in cpu.items()},
        "median_us": {k: round(statistics.median(vs), 2) for k, vs in cpu.items()},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000, help="records per block")
    parser.add_argument("--rounds", type=int, default=4, help="blocks per path, alternating")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--aiokafka-partitioner", action="store_true")
    print(orjson.dumps(asyncio.run(run(parser.parse_args())), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

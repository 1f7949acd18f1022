"""Bursty input is checkpointed once the input pauses, not in every gap between bursts
(``projection_checkpoint_quiet_ms``): a worker that keeps up with its partitions sees a
gap after every burst, and checkpointing in each wrote every hot key once per burst. The
checkpoint still follows soon after the input stops, long before the interval."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from agents.config.sync_config import InputBinding, load_config
from agents.imports.projector import Projector
from streams import kafka, topics
from streams.settings import Settings
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import create_topics, projection_committed_to_end, read_all
from tests.support.stack import wait_until, write_config

KEYS = 100
BURSTS = 5
# The input pauses this long after each burst is folded: longer than the fetch wait (an
# empty fetch comes back in every gap), far shorter than the quiet period.
GAP_S = 0.25


def change(n: int, version: int) -> tuple[bytes, bytes]:
    row = price_row(f"SKU-{n:05d}", float(n * 100 + version))
    key = key_bytes(row, PRICE_KEY)
    return key, orjson.dumps(envelope("prices", "u", row, lsn=1_000_000 + version))


def setup(kafka_servers: str, unique: str, tmp_path: Path) -> tuple[Settings, InputBinding]:
    path, _ = write_config(tmp_path, unique)
    settings = Settings(  # type: ignore[call-arg]
        app_id=f"quiet-{unique}",
        broker=f"kafka://{kafka_servers}",
        data_dir=tmp_path / "data",
        config_file=path,
        dlq_topic=f"dlq-{unique}",
        topic_partitions=2,
        projection_fetch_wait_ms=50,
        projection_checkpoint_interval_ms=60_000,  # never the reason here
        projection_checkpoint_quiet_ms=2_000,
    )
    return settings, load_config(str(path)).inputs[0]


async def newest_held(projector: Projector, binding: InputBinding, version: int) -> bool:
    for n in range(KEYS):
        found = await projector.lookup(binding, f"erp|price|SKU-{n:05d}|STD|1".encode())
        if found is None or found[1]["row"]["PriceSale"] != float(n * 100 + version):
            return False
    return True


async def test_bursts_with_short_gaps_are_checkpointed_once_the_input_pauses(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    settings, binding = setup(kafka_servers, unique, tmp_path)
    await create_topics(kafka_servers, [binding.topic], 2)
    projector = Projector(settings, load_config(str(settings.config_file)))
    producer = kafka.producer(settings, servers=kafka_servers, acks="all", linger_ms=5)
    await projector.start()
    await producer.start()
    try:
        for version in range(1, BURSTS + 1):
            sent = [
                await producer.send(binding.topic, key=k, value=v)
                for k, v in (change(n, version) for n in range(KEYS))
            ]
            await asyncio.gather(*sent)

            async def folded(version: int = version) -> bool:
                return await newest_held(projector, binding, version)

            await wait_until(folded, timeout=30, what=f"burst {version} folded")
            await asyncio.sleep(GAP_S)  # the input's shape: a short pause between bursts
        stopped = time.monotonic()
        # The input stopped: checkpointed after the quiet period, not the 60 s interval.
        await wait_until(
            lambda: projection_committed_to_end(settings, binding.topic),
            timeout=20,
            what="input committed",
        )
        assert time.monotonic() - stopped < 20
    finally:
        await producer.stop()
        await projector.stop()

    changelog = await read_all(kafka_servers, topics.state_topic(settings, binding.topic))
    # One checkpoint per burst (an empty fetch in every gap) wrote 5 records per key.
    assert len(changelog) <= 2 * KEYS, len(changelog)
    last = {record.key: orjson.loads(record.value) for record in changelog}
    assert {
        key.decode().split("|")[2]: value["row"]["PriceSale"] for key, value in last.items()
    } == {f"SKU-{n:05d}": float(n * 100 + BURSTS) for n in range(KEYS)}

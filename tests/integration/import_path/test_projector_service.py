"""The projection as a service on its own (no Faust worker): it checkpoints what it
folded (state changelog acknowledged, local store written, input offsets committed), a
restart goes on from its store, and a lost store is rebuilt from the changelog, with
every key at its newest version."""

from __future__ import annotations

import shutil
from pathlib import Path

from agents.config.sync_config import InputBinding, load_config
from agents.imports.projector import Projector
from streams import kafka
from streams.settings import Settings
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import create_topics, produce
from tests.support.stack import wait_until, write_config

KEYS = 200


def change(n: int, version: int) -> tuple[bytes, dict]:
    row = price_row(f"SKU-{n:05d}", float(n * 100 + version))
    return key_bytes(row, PRICE_KEY), envelope("prices", "u", row, lsn=1_000_000 + version)


def setup(kafka_servers: str, unique: str, tmp_path: Path) -> tuple[Settings, InputBinding]:
    path, _ = write_config(tmp_path, unique)
    settings = Settings(  # type: ignore[call-arg]
        app_id=f"proj-{unique}",
        broker=f"kafka://{kafka_servers}",
        data_dir=tmp_path / "data",
        config_file=path,
        dlq_topic=f"dlq-{unique}",
        topic_partitions=4,
    )
    config = load_config(str(path))
    return settings, config.inputs[0]


async def prices(projector: Projector, binding: InputBinding) -> dict[str, float]:
    held = {}
    for n in range(KEYS):
        found = await projector.lookup(binding, f"erp|price|SKU-{n:05d}|STD|1".encode())
        if found is not None:
            held[f"SKU-{n:05d}"] = found[1]["row"]["PriceSale"]
    return held


async def run_until(
    settings: Settings, binding: InputBinding, expected: dict[str, float]
) -> Projector:
    projector = Projector(settings, load_config(str(settings.config_file)))
    await projector.start()
    try:

        async def folded() -> bool:
            return (
                projector.pending_count(binding) == KEYS
                and await prices(projector, binding) == expected
            )

        await wait_until(folded, timeout=60, what="every change folded")
    finally:
        await projector.stop()
    return projector


async def committed_everything(settings: Settings, topic: str) -> bool:
    admin = kafka.admin_client(settings)
    reader = kafka.consumer(settings)
    await admin.start()
    await reader.start()
    try:
        tps = await kafka.partitions_of(reader, topic)
        ends = await reader.end_offsets(tps)
        offsets = await admin.list_consumer_group_offsets(
            f"{settings.app_id}-projection", partitions=tps
        )
        return all(offsets[tp].offset == ends[tp] for tp in tps)
    finally:
        await reader.stop()
        await admin.close()


async def test_a_restart_goes_on_from_the_checkpoint_and_a_lost_store_is_rebuilt(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    settings, binding = setup(kafka_servers, unique, tmp_path)
    await create_topics(kafka_servers, [binding.topic], 4)
    await produce(kafka_servers, binding.topic, [change(n, 1) for n in range(KEYS)])
    first = {f"SKU-{n:05d}": float(n * 100 + 1) for n in range(KEYS)}
    await run_until(settings, binding, first)
    # Stopped cleanly: the last checkpoint committed every input offset it folded.
    assert await committed_everything(settings, binding.topic)

    # Newer versions of half the keys, and an older one that must not win.
    await produce(
        kafka_servers,
        binding.topic,
        [change(n, 3) for n in range(KEYS // 2)] + [change(0, 2)],
    )
    second = {**first, **{f"SKU-{n:05d}": float(n * 100 + 3) for n in range(KEYS // 2)}}
    await run_until(settings, binding, second)
    assert await committed_everything(settings, binding.topic)

    # The local stores are lost: the next start rebuilds them from the state changelog.
    shutil.rmtree(tmp_path / "data" / settings.app_id / "projection")
    await run_until(settings, binding, second)

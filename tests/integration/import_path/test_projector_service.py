"""The projection as a service on its own (no Faust worker): it checkpoints what it
folded (state changelog acknowledged, local store written, input offsets committed), a
restart goes on from its store, and a lost store is rebuilt from the changelog, with
every key at its newest version."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from agents.config.sync_config import InputBinding, load_config
from agents.imports.projector import Projector
from streams import topics
from streams.settings import Settings
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import create_topics, produce, projection_committed_to_end, read_all
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


async def test_a_restart_goes_on_from_the_checkpoint_and_a_lost_store_is_rebuilt(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    settings, binding = setup(kafka_servers, unique, tmp_path)
    await create_topics(kafka_servers, [binding.topic], 4)
    await produce(kafka_servers, binding.topic, [change(n, 1) for n in range(KEYS)])
    first = {f"SKU-{n:05d}": float(n * 100 + 1) for n in range(KEYS)}
    await run_until(settings, binding, first)
    # Stopped cleanly: the last checkpoint committed every input offset it folded.
    assert await projection_committed_to_end(settings, binding.topic)

    # Newer versions of half the keys, and an older one that must not win.
    await produce(
        kafka_servers,
        binding.topic,
        [change(n, 3) for n in range(KEYS // 2)] + [change(0, 2)],
    )
    second = {**first, **{f"SKU-{n:05d}": float(n * 100 + 3) for n in range(KEYS // 2)}}
    await run_until(settings, binding, second)
    assert await projection_committed_to_end(settings, binding.topic)

    # The local stores are lost: the next start rebuilds them from the state changelog.
    shutil.rmtree(tmp_path / "data" / settings.app_id / "projection")
    await run_until(settings, binding, second)


async def test_a_key_changed_many_times_before_a_checkpoint_is_written_once(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    """Folding goes on across fetches until the checkpoint is due: 20 versions of each key,
    fetched 100 records at a time, reach the changelog as about one record per key (a
    checkpoint per fetch wrote one per key per fetch: 10 times as many), with every key at
    its newest version in the changelog, the store and after a rebuild."""
    settings, binding = setup(kafka_servers, unique, tmp_path)
    settings = settings.model_copy(
        update={"projection_batch_max": 100, "projection_checkpoint_interval_ms": 10_000}
    )
    await create_topics(kafka_servers, [binding.topic], 4)
    versions = 20
    # Key by key, version by version, interleaved: the key changes again in later fetches.
    await produce(
        kafka_servers,
        binding.topic,
        [change(n, v) for v in range(1, versions + 1) for n in range(KEYS)],
    )
    newest = {f"SKU-{n:05d}": float(n * 100 + versions) for n in range(KEYS)}
    await run_until(settings, binding, newest)
    assert await projection_committed_to_end(settings, binding.topic)

    changelog = await read_all(kafka_servers, topics.state_topic(settings, binding.topic))
    # 4,000 changes; a checkpoint per fetch of 100 would have written ~2,000 records.
    assert len(changelog) <= 2 * KEYS, len(changelog)
    last = {record.key: orjson.loads(record.value) for record in changelog}
    assert {
        key.decode().split("|")[2]: value["row"]["PriceSale"] for key, value in last.items()
    } == newest

    # The stores hold the same: a restart from them, then a rebuild from the changelog.
    await run_until(settings, binding, newest)
    shutil.rmtree(tmp_path / "data" / settings.app_id / "projection")
    await run_until(settings, binding, newest)


async def test_a_backlog_folded_to_its_end_is_stored_without_waiting_for_idle_input(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    """Once the fold reaches the end of its input (the fetch's high watermark), what it
    folded is checkpointed at once: a delta, the pending count and ``applied`` see the
    whole backlog without waiting for the checkpoint interval or for a fetch to wait out
    ``projection_fetch_wait_ms`` and come back empty (here both a minute). The quiet
    period is 0, so this backlog, however quickly folded, is one (the budget's unit tests
    hold the quiet period apart from bursts)."""
    settings, binding = setup(kafka_servers, unique, tmp_path)
    settings = settings.model_copy(
        update={
            "projection_batch_max": 100,
            "projection_checkpoint_interval_ms": 60_000,
            "projection_fetch_wait_ms": 60_000,
            "projection_checkpoint_quiet_ms": 0,
        }
    )
    await create_topics(kafka_servers, [binding.topic], 4)
    await produce(kafka_servers, binding.topic, [change(n, 1) for n in range(KEYS)])
    projector = Projector(settings, load_config(str(settings.config_file)))
    await projector.start()
    try:

        def stored() -> bool:
            return projector.pending_count(binding) == KEYS  # the stores' count

        await wait_until(stored, timeout=20, what="the backlog stored")
    finally:
        await projector.stop()

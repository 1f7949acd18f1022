"""The import flow's services built without a Faust worker: a jobs ledger held in memory
(its events fold in order, as the tracker agent folds the events topic), Kafka writes
through a plain producer of the real broker, and a projection running as a service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agents.config.runtime import NorceClients
from agents.config.sync_config import InputBinding, SyncConfig, load_config
from agents.imports.delta import DeltaSubmitter
from agents.imports.jobs import JobRecord, apply_job_event
from agents.imports.ledger import JobLedger
from agents.imports.projector import Projector
from agents.imports.reference_state import ReferenceChecks
from streams import kafka
from streams.messages import BatchIntent, JobEvent
from streams.settings import Settings
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import create_topics, produce
from tests.support.stack import SECRETS, wait_until, write_config


class MemoryLedger(JobLedger):
    """``JobLedger`` without its Faust topic and table: ``record`` folds the event at once
    (through ``fold``, the tracker's, when a test sets it; else ``apply_job_event``)."""

    def __init__(self) -> None:  # no Faust topic, table or mirror
        self.events: list[JobEvent] = []  # type: ignore[assignment]
        self.data: dict[bytes, dict[str, Any]] = {}
        self.fold: Any = None

    async def record(self, event: JobEvent) -> None:
        self.events.append(event)
        key = event.batch_id.encode()
        if self.fold is not None:
            await self.fold(key, event)
            return
        current = self.data.get(key)
        updated = apply_job_event(
            JobRecord.model_validate(current) if current is not None else None, event
        )
        if updated is not None:
            self.data[key] = updated.model_dump(mode="json")

    def records(self) -> list[JobRecord]:
        return [JobRecord.model_validate(v) for v in self.data.values()]

    def caught_up(self) -> bool:
        return True

    def get(self, key: bytes) -> dict[str, Any] | None:
        return self.data.get(key)

    def __contains__(self, key: bytes) -> bool:
        return key in self.data

    async def store(self, key: bytes, value: dict[str, Any] | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value


def flow_settings(
    kafka_servers: str,
    unique: str,
    tmp_path: Path,
    sim_url: str,
    monkeypatch: pytest.MonkeyPatch,
    **changes: Any,
) -> tuple[Settings, SyncConfig, InputBinding]:
    """Settings and the sync config of one ERP price input on this test's topics."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)  # the sources' credentials (the simulator's)
    path, _ = write_config(tmp_path, unique)
    settings = Settings(  # type: ignore[call-arg]
        app_id=f"flow-{unique}",
        broker=f"kafka://{kafka_servers}",
        data_dir=tmp_path / "data",
        config_file=path,
        dlq_topic=f"dlq-{unique}",
        topic_partitions=4,
        norce_base_url=sim_url,
        **changes,
    )
    config = load_config(str(path))
    return settings, config, config.inputs[0]


def price_change(n: int, price: float) -> tuple[bytes, dict[str, Any]]:
    row = price_row(f"SKU-{n:05d}", price)
    return key_bytes(row, PRICE_KEY), envelope("prices", "u", row, lsn=1_000_000 + n)


async def seed_prices(
    kafka_servers: str, binding: InputBinding, keys: int, *, batches: str | None = None
) -> None:
    """The input topic with ``keys`` price changes on it (and the batches topic)."""
    await create_topics(kafka_servers, [binding.topic], 4)
    if batches is not None:
        await create_topics(kafka_servers, [batches], 1)
    await produce(kafka_servers, binding.topic, [price_change(n, 10.0 + n) for n in range(keys)])


def delta_submitter(
    settings: Settings,
    config: SyncConfig,
    clients: NorceClients,
    projector: Projector,
    ledger: JobLedger,
    send_batch: Any,
    dead_letter: Any,
) -> DeltaSubmitter:
    """The submitter as ``wiring.install`` builds it, with these writes."""
    references = ReferenceChecks(settings, clients)
    return DeltaSubmitter(
        settings, config, clients, projector, ledger, references, send_batch, dead_letter
    )


@asynccontextmanager
async def running_projector(
    settings: Settings, config: SyncConfig, binding: InputBinding, keys: int
) -> AsyncIterator[Projector]:
    """The projection, started, once it holds ``keys`` pending keys of ``binding``."""
    projector = Projector(settings, config)
    await projector.start()
    try:
        await wait_until(
            lambda: projector.pending_count(binding) == keys, what=f"{keys} keys pending"
        )
        yield projector
    finally:
        await projector.stop()


class Produced:
    """Acknowledged writes through one plain producer of the real broker."""

    def __init__(self, settings: Settings) -> None:
        self.producer = kafka.producer(settings, acks="all")

    async def __aenter__(self) -> Produced:
        await self.producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.producer.stop()

    async def send(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> Any:
        return await (await self.producer.send(topic, value, key=key, partition=partition))

    def batches(self, topic: str) -> Any:
        """The delta submitter's ``send_batch`` onto ``topic``."""

        async def send_batch(key: bytes, intent: BatchIntent) -> tuple[int, int]:
            stored = await self.send(topic, key, intent.to_bytes())
            return stored.partition, stored.offset

        return send_batch

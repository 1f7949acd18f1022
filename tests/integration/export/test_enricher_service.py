"""The export flow's enricher and reader on their own (no Faust worker; the app is only
their producer): events on the events topic come out on every target topic once per
entity, an unchanged entity produces nothing, and every event is acknowledged. Events
produced while the reader joins its group are read too (they were once fetched before
the partition was open, dropped, and a later commit passed them)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from agents.config.sync_config import load_config
from agents.export.enricher import Enricher
from agents.export.events import parse_event
from agents.export.reader import EventsReader
from agents.export.targets import target_specs
from norce_simulator import SimulatorServer
from streams.app import create_app
from streams.kafka import TopicSpec, declare_and_confirm
from streams.settings import Settings
from streams.topics import norce_events_topic
from tests.integration.export.support import records_by_key, sim_config
from tests.support.kafka import produce
from tests.support.stack import wait_until, write_export_config

pytestmark = pytest.mark.integration

SKUS = [f"ENR-{n:03d}" for n in range(20)]


def seed(sim: SimulatorServer) -> None:
    sim.state.seed(
        {
            "sku": [
                {"PartNo": p, "Cultures": [{"CultureCode": "sv-SE", "ErpName": f"Name {p}"}]}
                for p in SKUS
            ]
        }
    )


def event(part_no: str) -> tuple[bytes, bytes]:
    body = orjson.dumps({"ClientId": 1, "PartNo": part_no})
    parsed = parse_event("SkuChangedNotification", body, received_at=time.time())
    return parsed.key.encode(), parsed.to_bytes()  # type: ignore[union-attr]


async def test_events_reach_every_target_once_and_unchanged_entities_produce_nothing(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    async with SimulatorServer(sim_config()) as sim:
        seed(sim)
        config_path, _ = write_export_config(tmp_path, unique)
        settings = Settings(  # type: ignore[call-arg]
            app_id=f"enr-{unique}",
            broker=f"kafka://{kafka_servers}",
            data_dir=tmp_path / "data",
            config_file=config_path,
            norce_base_url=sim.url,
            norce_client_secret="demo-secret",
            export_topic_prefix=f"{unique}.",
            export_window_s=0.05,
            dlq_topic=f"dlq-{unique}",
            topic_partitions=2,
        )
        specs = target_specs(load_config(str(config_path)), settings.export_topic_prefix)
        targets = sorted(spec.topic for spec in specs["sku"])  # the SKU events' targets
        assert len(targets) >= 2
        events_topic, digests_topic = norce_events_topic(settings), f"{unique}-digests"
        await declare_and_confirm(
            settings,
            [
                TopicSpec(events_topic, 2),
                TopicSpec(digests_topic, 2, compacted=True),
                TopicSpec(settings.dlq_topic, 1),
                *(TopicSpec(s.topic, 2, compacted=True) for kind in specs.values() for s in kind),
            ],
        )
        app = create_app(settings)
        enricher = Enricher(settings, app, specs, digests_topic)
        reader = EventsReader(
            settings, events_topic, digests_topic, enricher.coalescer.add, enricher.coalescer.drain
        )
        enricher.reader = reader
        await app.maybe_start_producer()
        await reader.start()
        try:
            await produce(kafka_servers, events_topic, [event(p) for p in SKUS], raw=True)

            async def every_target_has_every_sku() -> bool:
                for topic in targets:
                    if len(await records_by_key(kafka_servers, topic)) < len(SKUS):
                        return False
                return True

            await wait_until(every_target_has_every_sku, timeout=60, what="target records")
            produced = {t: await records_by_key(kafka_servers, t) for t in targets}
            assert all(len(v) == 1 for t in targets for v in produced[t].values()), produced

            # The same events again: Norce's data did not change, so nothing is produced,
            # and the events are acknowledged all the same.
            await produce(kafka_servers, events_topic, [event(p) for p in SKUS], raw=True)
            await wait_until(
                lambda: enricher.unchanged >= len(SKUS) * len(targets),
                timeout=60,
                what="the repeated events found unchanged",
            )
            again = {t: await records_by_key(kafka_servers, t) for t in targets}
            counts = {t: sum(len(v) for v in by_key.values()) for t, by_key in again.items()}
            assert counts == dict.fromkeys(targets, len(SKUS))
            await wait_until(
                lambda: all(o.outstanding == 0 for o in reader.offsets.values()),
                timeout=30,
                what="every event acknowledged",
            )
        finally:
            await reader.stop()
            await enricher.coalescer.close()
            await app.producer.stop()

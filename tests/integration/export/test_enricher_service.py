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

from agents.export.events import parse_event
from norce_simulator import SimulatorServer
from streams.settings import Settings
from tests.integration.export.support import enricher_rig, records_by_key, sim_config
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
        async with enricher_rig(settings, unique) as rig:
            enricher, reader, targets = rig.enricher, rig.reader, rig.targets
            events_topic = rig.events_topic
            assert len(targets) >= 2
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

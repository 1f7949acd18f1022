"""The export window counts from the event's receipt at intake (its record's timestamp),
not from when the reader reads it: an event that spent long in intake or on the events
topic is flushed when its window since receipt ends, while a fresh one still waits its
whole window. Real broker, the simulator over HTTP, the enricher and reader on their own
(the app is only their producer)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from agents.export.events import parse_event
from norce_simulator import SimulatorServer
from streams import kafka
from streams.settings import Settings
from tests.integration.export.support import enricher_rig, records_by_key, sim_config
from tests.support.stack import wait_until, write_export_config

pytestmark = pytest.mark.integration

WINDOW = 8.0


def event(part_no: str, received_at: float) -> tuple[bytes, bytes]:
    body = orjson.dumps({"ClientId": 1, "PartNo": part_no})
    parsed = parse_event("SkuChangedNotification", body, received_at=received_at)
    return parsed.key.encode(), parsed.to_bytes()  # type: ignore[union-attr]


async def test_an_event_read_late_is_flushed_when_its_window_since_receipt_ends(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    async with SimulatorServer(sim_config()) as sim:
        sim.state.seed({"sku": [{"PartNo": "WIN-OLD"}, {"PartNo": "WIN-NEW"}]})
        config_path, _ = write_export_config(tmp_path, unique)
        settings = Settings(  # type: ignore[call-arg]
            app_id=f"win-{unique}",
            broker=f"kafka://{kafka_servers}",
            data_dir=tmp_path / "data",
            config_file=config_path,
            norce_base_url=sim.url,
            norce_client_secret="demo-secret",
            export_topic_prefix=f"{unique}.",
            export_window_s=WINDOW,
            dlq_topic=f"dlq-{unique}",
            topic_partitions=2,
        )
        async with enricher_rig(settings, unique) as rig:
            enricher, reader, targets = rig.enricher, rig.reader, rig.targets
            events_topic = rig.events_topic
            producer = kafka.producer(settings, servers=kafka_servers)
            await producer.start()
            try:
                await wait_until(lambda: len(reader.offsets) == 2, timeout=60, what="assignment")
                now = time.time()
                # Received 7.5 s ago (intake's create time on the record), and just now.
                old_at, new_at = now - WINDOW + 0.5, now
                for part_no, at in (("WIN-OLD", old_at), ("WIN-NEW", new_at)):
                    key, value = event(part_no, at)
                    await producer.send_and_wait(
                        events_topic, value, key=key, timestamp_ms=int(at * 1000)
                    )
                produced = time.monotonic()

                # Without the rule the old event would wait a whole window after its read.
                await wait_until(
                    lambda: enricher.records_out >= len(targets), timeout=WINDOW / 2, what="old out"
                )
                old_after = time.monotonic() - produced
                assert enricher.records_out == len(targets)  # the fresh one's window still runs
                by_key = await records_by_key(kafka_servers, targets[0])
                assert set(by_key) == {b"WIN-OLD"}

                await wait_until(
                    lambda: enricher.records_out >= 2 * len(targets), timeout=60, what="new out"
                )
                new_after = time.monotonic() - produced
                # The window is kept for the fresh event (give or take the flush interval).
                assert new_after >= WINDOW - settings.export_flush_interval_s - 0.1
                assert old_after < WINDOW / 2
            finally:
                await producer.stop()

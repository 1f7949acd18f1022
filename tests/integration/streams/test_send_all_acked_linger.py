"""``send_all_acked`` (the export's target records) hands aiokafka closed batches, which
go out without waiting for the producer's linger: the records of a flush are acknowledged
within a round trip, not a linger later. Real broker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.app import create_app
from streams.kafka import Send, send_all_acked
from streams.settings import Settings
from tests.support.kafka import create_topics

pytestmark = pytest.mark.integration

LINGER_S = 3.0  # far above a round trip, so waiting it out cannot pass unnoticed


async def test_a_flush_s_records_do_not_wait_for_the_producer_linger(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    topic = f"linger-{unique}"
    await create_topics(kafka_servers, [topic])
    settings = Settings(  # type: ignore[call-arg]
        app_id=f"linger-{unique}", broker=f"kafka://{kafka_servers}", data_dir=tmp_path
    )
    app = create_app(settings)
    app.conf.producer_linger = LINGER_S
    await app.maybe_start_producer()
    try:
        await send_all_acked(app, [Send(topic, b"warm-up", b"0")])  # metadata, connection
        started = time.monotonic()
        await send_all_acked(app, [Send(topic, f"k{i}".encode(), b"v") for i in range(20)])
        took = time.monotonic() - started
        assert took < LINGER_S / 2, f"acknowledged after {took:.2f} s"
    finally:
        await app.producer.stop()

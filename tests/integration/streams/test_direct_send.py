"""``DirectSend`` (the webhook intake's produce): the record goes straight to the app's
aiokafka producer, and the call returns only once the broker acknowledged it, at the
partition Kafka's default partitioner picks for its key. Real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.app import create_app
from streams.direct_send import DirectSend
from streams.partitioning import key_partition
from streams.settings import Settings
from tests.support.kafka import create_topics, read_all

pytestmark = pytest.mark.integration


async def test_returns_once_the_broker_has_the_record_under_its_key_s_partition(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    topic = f"direct-{unique}"
    await create_topics(kafka_servers, [topic], partitions=4)
    settings = Settings(  # type: ignore[call-arg]
        app_id=f"direct-{unique}", broker=f"kafka://{kafka_servers}", data_dir=tmp_path
    )
    app = create_app(settings)
    send = DirectSend(app)  # starts the app's producer on its first call
    try:
        sent = []
        for i in range(12):
            key = f"sku:D-{i}".encode()
            meta = await send(topic, key, b"v%d" % i, [("received-at", b"1.000")])
            sent.append((key, b"v%d" % i, meta.partition, meta.offset))
            assert meta.partition == key_partition(key, 4)
        # Acknowledged means stored: every record is there, at the offset the ack named.
        stored = await read_all(kafka_servers, topic, timeout=30)
        assert sorted((r.key, r.value, r.partition, r.offset) for r in stored) == sorted(sent)
        assert {tuple(r.headers) for r in stored} == {(("received-at", b"1.000"),)}
    finally:
        await app.producer.stop()
    # A producer that cannot take the record raises (the intake answers 503), never hangs.
    with pytest.raises(Exception):  # noqa: B017  (aiokafka's ProducerClosed, or its cause)
        await send(topic, b"sku:late", b"v", [])

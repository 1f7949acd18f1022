"""One key's newest records, read backwards from the end of its partition only, in
bounded chunks (``agents.ops.key_scan``), on the real broker."""

from __future__ import annotations

import uuid

import pytest

from agents.ops import export_trace
from agents.ops.key_scan import scan_key
from streams.settings import Settings
from tests.support.kafka import create_topics, produce

pytestmark = pytest.mark.asyncio


async def test_the_newest_records_of_a_key_from_its_partition_and_a_bounded_scan(
    kafka_servers: str,
) -> None:
    topic = f"scan-{uuid.uuid4().hex[:10]}"
    await create_topics(kafka_servers, [topic], partitions=3)
    settings = Settings(broker=f"kafka://{kafka_servers}", kafka_security_protocol="PLAINTEXT")
    key = b"sku:P1"
    mine = export_trace.partition_for(key, 3)
    # Others of the key's partition between its records: the scan goes back past them.
    *others, first = [k for k in (f"sku:O{i}".encode() for i in range(300))
                      if export_trace.partition_for(k, 3) == mine][:31]  # fmt: skip
    messages = [
        (first, {"n": -2}),  # offset 0: found only by a scan back to the beginning
        (key, {"n": 0}),
        *((k, {"n": -1}) for k in others),
        (key, {"n": 1}),
        (key, {"n": 2}),
    ]
    await produce(kafka_servers, topic, messages)

    found = await scan_key(settings, topic, key, want=2, chunk=7)
    assert found is not None and found.partition == mine and found.complete is False
    assert [r.value for r in found.records] == [b'{"n":2}', b'{"n":1}']  # newest first
    assert found.scanned == 7  # stopped after the first chunk: it held both

    everything = await scan_key(settings, topic, key, want=10, chunk=7)
    assert everything is not None and everything.complete and everything.scanned == 34
    assert len(everything.records) == 3

    bounded = await scan_key(settings, topic, first, max_scan=20, chunk=7)
    assert bounded is not None and bounded.records == [] and bounded.complete is False
    assert bounded.scanned == 20
    assert bounded.view()["note"] == "scan stopped after 20 records without finding the key"

    oldest = await scan_key(settings, topic, first, chunk=7)
    assert oldest is not None and [r.offset for r in oldest.records] == [0]
    assert await scan_key(settings, f"{topic}-none", key) is None

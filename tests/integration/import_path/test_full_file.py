"""The full import's rows as read from a real state changelog: each key's current row
once, as of the snapshot, the same again on a retry, and the changelog read only twice
(a count pass and a streaming pass: a 1,000,000-key file paid for a third)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from agents.imports.full_file import StateSnapshot
from streams.kafka import consumer
from tests.support.kafka import PLAINTEXT, create_topics, produce

PARTITIONS = 3


def value(part: str, price: int) -> bytes:
    row = {"PartNo": part, "PriceListCode": "STD", "PriceSale": price}
    return orjson.dumps({"v": [1, price], "row": row, "d": False, "p": None, "h": None})


async def rows_of(snapshot: StateSnapshot) -> list[dict[str, Any]]:
    return [row async for row in snapshot.rows()]


async def test_snapshot_streams_each_current_row_once_and_reads_the_changelog_twice(
    kafka_servers: str,
) -> None:
    topic = f"ff-{uuid.uuid4().hex[:8]}-state"
    await create_topics(kafka_servers, [topic], PARTITIONS, {"cleanup.policy": "compact"})
    records: list[tuple[bytes | None, Any]] = []
    for n in range(300):
        key = f"erp|price|P{n}|STD|1".encode()
        records.append((key, value(f"P{n}", 1)))
        if n % 3 == 0:
            records.append((key, value(f"P{n}", 2)))  # a later value of the key wins
        if n % 10 == 0:
            records.append((key, None))  # deleted: not in the file
    records += [(f"erp|stock|S{n}|W1".encode(), value(f"S{n}", 5)) for n in range(50)]
    await produce(kafka_servers, topic, records, raw=True)

    reader = consumer(PLAINTEXT, servers=kafka_servers)
    await reader.start()
    try:
        snapshot = StateSnapshot(reader, topic, b"erp|price|")
        total = await snapshot.open()
        # Written after the snapshot was fixed: not in this file.
        await produce(
            kafka_servers,
            topic,
            [(b"erp|price|P1|STD|1", value("P1", 99)), (b"erp|price|NEW|STD|1", value("NEW", 1))],
            raw=True,
        )
        first = await rows_of(snapshot)
        # Twice the snapshot's records, and the two written after it (fetched with them).
        read_once = len(records)
        assert snapshot.offsets_read <= 2 * read_once + 2, (snapshot.offsets_read, read_once)
        again = await rows_of(snapshot)  # a retried POST streams the same file
    finally:
        await reader.stop()

    expected = {f"P{n}": 2 if n % 3 == 0 else 1 for n in range(300) if n % 10 != 0}  # 270 keys
    assert total == len(expected) == 270
    assert len(first) == total
    assert {row["PartNo"]: row["PriceSale"] for row in first} == expected
    assert sorted(orjson.dumps(r) for r in again) == sorted(orjson.dumps(r) for r in first)


async def test_snapshot_of_an_empty_prefix_has_no_rows(kafka_servers: str) -> None:
    topic = f"ff-{uuid.uuid4().hex[:8]}-state"
    await create_topics(kafka_servers, [topic], PARTITIONS, {"cleanup.policy": "compact"})
    await produce(kafka_servers, topic, [(b"erp|stock|S1|W1", value("S1", 1))], raw=True)
    reader = consumer(PLAINTEXT, servers=kafka_servers)
    await reader.start()
    try:
        snapshot = StateSnapshot(reader, topic, b"erp|price|")
        assert await snapshot.open() == 0
        assert await rows_of(snapshot) == []
    finally:
        await reader.stop()

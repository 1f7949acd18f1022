"""Issue 23 item 4: a 2 MB input record is dead-lettered (capped: a prefix of the original,
its size and sha256) and the flow goes on. It used to freeze every partition: the letter
(base64, +1/3) exceeded the dead-letter topic's max.message.bytes and the checkpoint
retried it forever while holding its lock."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from norce_simulator import SimulatorServer
from streams.records import DEAD_LETTER_MAX_BYTES, DeadLetter
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import create_topics, produce, read_all, wait_for_records
from tests.support.stack import deliver, import_worker, norce_prices

MB = 1024 * 1024


async def test_a_2mb_record_is_dead_lettered_capped_and_the_flow_goes_on(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    # The operator's input topic takes large records (Debezium's may); the service's own
    # topics must cope with what arrives on it.
    topic = f"erp.public.prices.{unique}"
    await create_topics(kafka_servers, [topic], 4, {"max.message.bytes": str(8 * MB)})
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (worker, _, topics):
        assert topics["price"] == topic
        junk = (b"big-junk", b"\x00" * (2 * MB))  # not JSON: decode stage
        row = price_row("SKU-BIG", 5.0)
        row["currency_code"] = "X" * (2 * MB)  # maps fine: too large for the state
        huge_row = (key_bytes(row, PRICE_KEY), orjson.dumps(envelope("prices", "u", row)))
        valid = [
            (key_bytes(r, PRICE_KEY), orjson.dumps(envelope("prices", "u", r)))
            for r in (price_row(f"SKU-{n:05d}", n + 0.5) for n in range(20))
        ]
        await produce(
            kafka_servers, topic, [junk, huge_row, *valid], raw=True, max_request_size=8 * MB
        )

        records = await wait_for_records(kafka_servers, f"dlq-{unique}", 2)
        letters = {d.key: d for d in (DeadLetter.from_bytes(r.value) for r in records)}
        assert set(letters) == {junk[0], huge_row[0]}
        assert letters[junk[0]].stage == "decode"
        assert letters[huge_row[0]].stage == "encode"
        assert "more than the state changelog takes" in letters[huge_row[0]].reason
        for key, value in (junk, huge_row):
            letter = letters[key]
            assert letter.value == value[:DEAD_LETTER_MAX_BYTES]
            assert letter.value_size == len(value)
            assert letter.value_sha256 == hashlib.sha256(value).hexdigest()
        assert all(len(r.value) < MB for r in records)

        expected = {f"SKU-{n:05d}": n + 0.5 for n in range(20)}
        await deliver(worker, sim, expected)
        assert norce_prices(sim) == expected
        state = await read_all(kafka_servers, f"imp-{unique}-state.{topic}")
        assert len({r.key for r in state}) == 20 and all(len(r.value) < MB for r in state)
        assert worker.proc is not None and worker.proc.poll() is None

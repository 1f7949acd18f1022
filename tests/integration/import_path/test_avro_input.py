"""Avro change data in the Confluent wire format, with its schemas in a real registry
(Apicurio from tools/registry), through a worker on the real broker to the simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from norce_simulator import SimulatorServer
from streams.records import DeadLetter
from tests.support.avro import envelope_datum, key_datum, price_datum, price_schemas, register, wire
from tests.support.broker import free_port
from tests.support.kafka import produce, read_all, wait_for_records
from tests.support.stack import deliver, delta_status, import_worker, wait_applied, wait_until

UNKNOWN_ID = 987_654
KEY_SCHEMA, VALUE_SCHEMA = price_schemas("erp.public.prices")


def change(
    key_id: int, value_id: int, op: str, part_no: str, price: str, lsn: int
) -> tuple[bytes, bytes]:
    """A Debezium Avro change of ``part_no``'s price: (wire key, wire value)."""
    row = price_datum(part_no, price)
    image: dict[str, Any] = {"before": row} if op == "d" else {}
    datum = envelope_datum(op, None if op == "d" else row, lsn=lsn, ts_ms=1_714_000_000, **image)
    return wire(key_id, KEY_SCHEMA, key_datum(row)), wire(value_id, VALUE_SCHEMA, datum)


async def test_avro_changes_reach_norce_and_an_unresolvable_schema_id_is_dead_lettered(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer, registry_url: str
) -> None:
    # Keyed by the Kafka key (no key_columns): the Avro key is decoded for the state key.
    changes = {"schema_registry": {"url": registry_url}, "key_columns": None}
    async with import_worker(kafka_servers, unique, tmp_path, sim.url, binding_changes=changes) as (
        worker,
        _,
        topics,
    ):
        topic = topics["price"]
        ids = (
            await register(registry_url, f"{topic}-key", KEY_SCHEMA),
            await register(registry_url, f"{topic}-value", VALUE_SCHEMA),
        )
        key, value = change(*ids, "u", "SKU-9", "9.99", 30)
        unresolvable = (key, b"\0" + UNKNOWN_ID.to_bytes(4, "big") + value[5:])
        messages = [
            change(*ids, "r", "SKU-1", "100.00", 10),  # snapshot
            change(*ids, "r", "SKU-2", "80.00", 10),
            change(*ids, "u", "SKU-1", "120.50", 20),  # newer: wins
            change(*ids, "u", "SKU-1", "110.00", 15),  # older, delivered late: dropped
            unresolvable,
            change(*ids, "c", "SKU-3", "33.30", 40),  # after the bad record: the stream goes on
        ]
        await produce(kafka_servers, topic, messages, raw=True)

        [record] = await wait_for_records(kafka_servers, f"dlq-{unique}", 1)
        letter = DeadLetter.from_bytes(record.value)
        assert (letter.key, letter.value) == unresolvable
        assert letter.stage == "decode" and letter.topic == topic
        assert f"schema id {UNKNOWN_ID} is not in the schema registry" in letter.reason

        await wait_applied([worker], "erp", "price", 5)
        await deliver(worker, sim, {"SKU-1": 120.5, "SKU-2": 80.0, "SKU-3": 33.3})
        rows = {r["PartNo"]: r for r in sim.state.list_items("price")}
        assert rows["SKU-1"]["CurrencyCode"] == "SEK" and rows["SKU-1"]["CostUnit"] == 74.71


class Gate:
    """A TCP forwarder to the registry on a port of its own. Shut, it takes each connection
    and closes it at once (counted in ``attempts``): the registry does not answer."""

    def __init__(self, target: str) -> None:
        url = httpx.URL(target)
        self.target = (url.host, url.port or 80)
        self.port = free_port()
        self.url = str(url.copy_with(port=self.port)).rstrip("/")
        self.attempts = 0
        self.forwarding = False
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.forwarding:
            self.attempts += 1
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_registry_outage_holds_the_input_back_and_loses_nothing(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer, registry_url: str
) -> None:
    gate = Gate(registry_url)
    changes = {"schema_registry": {"url": gate.url}, "key_columns": None}
    extra = {"NORCE_SYNC_SCHEMA_REGISTRY_RETRY_MAX_S": "1"}
    await gate.start()
    try:
        async with import_worker(
            kafka_servers, unique, tmp_path, sim.url, binding_changes=changes, env_extra=extra
        ) as (worker, _, topics):
            topic = topics["price"]
            ids = (
                await register(registry_url, f"{topic}-key", KEY_SCHEMA),
                await register(registry_url, f"{topic}-value", VALUE_SCHEMA),
            )
            messages = [change(*ids, "c", f"SKU-{n}", f"{n}0.00", 10 + n) for n in (1, 2)]
            await produce(kafka_servers, topic, messages, raw=True)
            # Tried again and again (1 s apart at most): one warning, nothing folded.
            await wait_until(lambda: gate.attempts >= 4, what="four tries", timeout=60)
            log = worker.log_path.read_text()
            assert log.count("unavailable") == 1, log
            assert (await delta_status(worker, "erp", "price"))["applied"] == 0

            gate.forwarding = True
            await wait_applied([worker], "erp", "price", 2)
            await deliver(worker, sim, {"SKU-1": 10.0, "SKU-2": 20.0})
            text = worker.log_path.read_text()
    finally:
        await gate.close()
    # One line when it went away, one when it came back: no line per retry.
    assert text.count("unavailable") == 1, text
    assert text.count("answers again") == 1
    assert await read_all(kafka_servers, f"dlq-{unique}", timeout=2) == []

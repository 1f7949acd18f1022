"""Avro change data in the Confluent wire format, with its schemas in a real registry
(Apicurio from tools/registry), through a worker on the real broker to the simulator."""

from __future__ import annotations

from pathlib import Path

from norce_simulator import SimulatorServer
from streams.records import DeadLetter
from tests.support.avro import envelope_datum, key_datum, price_datum, price_schemas, register, wire
from tests.support.kafka import produce, wait_for_records
from tests.support.stack import deliver, import_worker, wait_applied

UNKNOWN_ID = 987_654


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
        key_schema, value_schema = price_schemas("erp.public.prices")
        key_id = await register(registry_url, f"{topic}-key", key_schema)
        value_id = await register(registry_url, f"{topic}-value", value_schema)

        def change(op: str, part_no: str, price: str, lsn: int) -> tuple[bytes, bytes]:
            row = price_datum(part_no, price)
            image = {"before": row, "row": None} if op == "d" else {"row": row}
            datum = envelope_datum(op, image.pop("row"), lsn=lsn, ts_ms=1_714_000_000, **image)
            return wire(key_id, key_schema, key_datum(row)), wire(value_id, value_schema, datum)

        key, value = change("u", "SKU-9", "9.99", 30)
        unresolvable = (key, b"\0" + UNKNOWN_ID.to_bytes(4, "big") + value[5:])
        messages = [
            change("r", "SKU-1", "100.00", 10),  # snapshot
            change("r", "SKU-2", "80.00", 10),
            change("u", "SKU-1", "120.50", 20),  # newer: wins
            change("u", "SKU-1", "110.00", 15),  # older, delivered late: dropped
            unresolvable,
            change("c", "SKU-3", "33.30", 40),  # after the bad record: the stream goes on
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

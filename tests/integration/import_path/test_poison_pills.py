"""Issue 23 item 1: one record that fails anywhere in the fold is dead-lettered with its
stage and reason, and the batch goes on (the worker used to exit on the first one, and
crash again on the same batch after every restart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from norce_simulator import SimulatorServer
from streams.records import DeadLetter
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import produce, wait_for_records
from tests.support.stack import deliver, import_worker, norce_prices

HUGE = "1000000000000000000000000000000"  # the probe: NUMERIC(38,0), string mode

HOOK = """
def hook(row, context):
    # A hook that lets an integer beyond 64 bits through: the state encoder refuses it.
    if row.get("PartNo") == "SKU-HOOK":
        return {**row, "PriceSale": 2 ** 70}
    return row
"""


def change(part_no: str, price: Any, lsn: int) -> tuple[bytes, bytes]:
    row = price_row(part_no, 1.0)
    row["price_sale"] = price
    return key_bytes(row, PRICE_KEY), orjson.dumps(envelope("prices", "u", row, lsn=lsn))


async def test_bad_numbers_and_unencodable_values_are_dead_lettered_and_the_batch_goes_on(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    (tmp_path / "hooks.py").write_text(HOOK)
    async with import_worker(
        kafka_servers, unique, tmp_path, sim.url, binding_changes={"hook": "hooks.py:hook"}
    ) as (worker, _, topics):
        bad = [
            change("SKU-HUGE", HUGE, 10),
            change("SKU-EXP", "1E+999999999", 11),
            change("SKU-NAN", "NaN", 12),
            change("SKU-HOOK", "5.00", 13),
        ]
        # Each bad record first, then 20 valid changes: some on the bad keys' partitions.
        valid = [change(f"SKU-{n:05d}", f"{n}.50", 100 + n) for n in range(20)]
        await produce(kafka_servers, topics["price"], [*bad, *valid], raw=True)

        records = await wait_for_records(kafka_servers, f"dlq-{unique}", len(bad))
        letters = {d.key: d for d in (DeadLetter.from_bytes(r.value) for r in records)}
        assert set(letters) == {key for key, _ in bad}
        by_sku = {orjson.loads(k)["part_no"]: d for k, d in letters.items()}
        assert by_sku["SKU-HUGE"].stage == "map" and "64-bit" in by_sku["SKU-HUGE"].reason
        assert by_sku["SKU-EXP"].stage == "map" and "64-bit" in by_sku["SKU-EXP"].reason
        assert by_sku["SKU-NAN"].stage == "map" and "finite" in by_sku["SKU-NAN"].reason
        assert by_sku["SKU-HOOK"].stage == "encode" and "64-bit" in by_sku["SKU-HOOK"].reason
        assert all(d.value == value for (key, value) in bad for d in [letters[key]])

        expected = {f"SKU-{n:05d}": n + 0.5 for n in range(20)}
        await deliver(worker, sim, expected)
        assert norce_prices(sim) == expected
        assert worker.proc is not None and worker.proc.poll() is None  # never exited

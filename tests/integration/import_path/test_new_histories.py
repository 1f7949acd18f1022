"""Issue 23 item 2 through the projection to Norce: after a MySQL failover (new server,
lower binlog files) and after a binlog reset and re-snapshot, later changes of keys seen
before reach Norce (they were dropped as "not newer", for good)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from norce_simulator import SimulatorServer
from tests.support.debezium import PRICE_KEY, key_bytes, price_row
from tests.support.kafka import produce
from tests.support.stack import deliver, delta_status, import_worker, wait_applied

KEYS = 8


def mysql_change(
    n: int, price: float, *, server_id: int, uuid: str, file: int, pos: int, op: str = "u"
) -> tuple[bytes, bytes]:
    row = price_row(f"SKU-{n:05d}", price)
    source: dict[str, Any] = {
        "version": "2.5.0.Final",
        "connector": "mysql",
        "name": "erp",
        "ts_ms": 1_700_000_000_000,
        "snapshot": "true" if op == "r" else "false",
        "db": "erp",
        "table": "prices",
        "server_id": server_id,
        "gtid": f"{uuid}:{pos}",
        "file": f"mysql-bin.{file:06d}",
        "pos": pos,
        "row": 0,
    }
    envelope = {"before": None, "after": row, "source": source, "op": op, "ts_ms": 1}
    return key_bytes(row, PRICE_KEY), orjson.dumps(envelope)


async def test_changes_after_a_failover_and_after_a_re_snapshot_reach_norce(
    kafka_servers: str, unique: str, tmp_path: Path, sim: SimulatorServer
) -> None:
    async with import_worker(kafka_servers, unique, tmp_path, sim.url) as (worker, _, topics):
        topic = topics["price"]
        old = {"server_id": 1, "uuid": "aaaaaaaa-0001"}
        first = [mysql_change(n, 100 + n, **old, file=120, pos=9_000 + n) for n in range(KEYS)]
        await produce(kafka_servers, topic, first, raw=True)
        await wait_applied([worker], "erp", "price", KEYS)
        await deliver(worker, sim, {f"SKU-{n:05d}": 100 + n for n in range(KEYS)})

        # Failover: the new primary's binlog files are numbered lower.
        new = {"server_id": 2, "uuid": "bbbbbbbb-0002"}
        failover = [mysql_change(n, 200 + n, **new, file=3, pos=400 + n) for n in range(KEYS)]
        await produce(kafka_servers, topic, failover, raw=True)
        await wait_applied([worker], "erp", "price", 2 * KEYS)
        await deliver(worker, sim, {f"SKU-{n:05d}": 200 + n for n in range(KEYS)})

        # RESET MASTER on the new primary, then snapshot.mode=when_needed re-reads the
        # table at mysql-bin.000001; later changes stream on from there.
        snapshot = [mysql_change(n, 300 + n, **new, file=1, pos=154, op="r") for n in range(KEYS)]
        later = [mysql_change(n, 400 + n, **new, file=1, pos=900 + n) for n in range(KEYS // 2)]
        await produce(kafka_servers, topic, [*snapshot, *later], raw=True)
        await wait_applied([worker], "erp", "price", 3 * KEYS + KEYS // 2)
        expected = {f"SKU-{n:05d}": (400 if n < KEYS // 2 else 300) + n for n in range(KEYS)}
        await deliver(worker, sim, expected)

        # Replays within the new history (a connector restart re-sends) change nothing.
        await produce(kafka_servers, topic, later, raw=True)
        await wait_applied([worker], "erp", "price", 4 * KEYS)
        status = await delta_status(worker, "erp", "price")
        assert status["pending"] == 0
        await deliver(worker, sim, expected)

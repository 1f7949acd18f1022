"""Per-connector version ordering, as Debezium documents each connector's ``source`` block.

The ``source`` blocks start from the examples in Debezium's connector documentation
(https://debezium.io/documentation/reference/stable/connectors/<connector>.html, the
"create events" / "update events" sections). Each history below is a key's changes in
the order Debezium emits them, across the snapshot boundary; the property test delivers
them out of order and with duplicates and checks that folding them through
``projection.fold_change`` ends at the change Debezium emitted last.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from agents.config.sync_config import InputBinding
from agents.imports import projection
from agents.imports.cdc import NotAChange, decode_mapped
from streams.records import version_key, version_key_newer
from tests.support.connector_messages import PRICES, decoded, message, row, sql_lsn
from tests.support.debezium_sources import MONGODB, MYSQL, ORACLE, POSTGRES, SQLSERVER
from tests.support.sync_config import with_changes

KEY_COLUMNS = ("part_no", "price_list_code", "quantity_break")


def newer(a: bytes, b: bytes) -> bool:
    return version_key_newer(decoded(a).version_key, decoded(b).version_key)


# --- the cases the issue names -----------------------------------------------------------


def test_postgres_orders_by_lsn_not_time() -> None:
    first = message({**POSTGRES, "lsn": 100, "ts_ms": 2000}, "u", 1)
    later = message({**POSTGRES, "lsn": 101, "ts_ms": 1999}, "u", 2)
    assert newer(later, first) and not newer(first, later)
    assert decoded(later).version == [1999, 101]  # the shape stored before this change


def test_postgres_sequence_supplies_a_missing_lsn() -> None:
    source = {k: v for k, v in POSTGRES.items() if k != "lsn"}
    assert decoded(message(source, "u", 1)).version == [POSTGRES["ts_ms"], 24023128]


def test_mysql_rows_of_one_binlog_event_are_distinct_and_ordered() -> None:
    first = message({**MYSQL, "row": 0}, "u", 1)
    second = message({**MYSQL, "row": 1}, "u", 2)
    assert newer(second, first) and not newer(first, second)
    assert decoded(second).version == [MYSQL["ts_ms"], 3, 484, 1]


def test_mysql_next_binlog_file_is_newer_and_gtid_does_not_order() -> None:
    old = message({**MYSQL, "gtid": "b-uuid:9", "pos": 90_000}, "u", 1)
    new = message({**MYSQL, "file": "mysql-bin.000004", "pos": 4, "gtid": "a-uuid:1"}, "u", 2)
    assert newer(new, old)


def test_sqlserver_in_flight_change_is_newer_than_the_snapshot() -> None:
    snapshot = message(
        {**SQLSERVER, "snapshot": "true", "change_lsn": None, "event_serial_no": None,
         "commit_lsn": sql_lsn(0x27, 0xAC0, 7)},
        "r",
        1,
    )  # fmt: skip
    in_flight = message(
        {**SQLSERVER, "change_lsn": sql_lsn(0x27, 0xA00, 2), "commit_lsn": sql_lsn(0x27, 0xB00, 3)},
        "u",
        2,
    )
    assert newer(in_flight, snapshot) and not newer(snapshot, in_flight)


def test_sqlserver_event_serial_no_orders_events_of_one_change_lsn() -> None:
    first = message({**SQLSERVER, "event_serial_no": "1"}, "u", 1)
    second = message({**SQLSERVER, "event_serial_no": "2"}, "u", 2)
    assert newer(second, first)


def test_sqlserver_lsn_beyond_64_bits_is_stored() -> None:
    big = message({**SQLSERVER, "commit_lsn": sql_lsn(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFF)}, "u", 1)
    value = projection.fold_change(None, decoded(big).version, {}, False, 0.0)
    assert value is not None and projection.decode(projection.encode(value)) == value


def test_oracle_in_flight_change_is_newer_than_the_snapshot() -> None:
    snapshot = message({**ORACLE, "snapshot": "true", "scn": "2125544", "commit_scn": None}, "r", 1)
    in_flight = message({**ORACLE, "scn": "2125500", "commit_scn": "2125600"}, "u", 2)
    assert newer(in_flight, snapshot) and not newer(snapshot, in_flight)
    committed_before = message({**ORACLE, "scn": "2125500", "commit_scn": "2125540"}, "u", 3)
    assert newer(snapshot, committed_before)


def test_mongodb_orders_by_oplog_second_and_ordinal() -> None:
    first = message({**MONGODB, "ord": 6}, "u", 1)
    second = message({**MONGODB, "ord": 7}, "u", 2)
    next_second = message({**MONGODB, "ts_ms": MONGODB["ts_ms"] + 1000, "ord": 1}, "u", 3)
    assert newer(second, first) and newer(next_second, second)
    assert decoded(second).row["PriceSale"] == 2


def test_a_value_stored_in_the_old_shape_gives_way_to_a_later_change() -> None:
    # Before per-connector positions MySQL stored [ts_ms, file << 32 | pos]; the new shape
    # differs, so time decides between the two (then the value is in the new shape).
    held = {"v": [1000, (3 << 32) | 484], "row": {}, "d": False, "p": None, "h": None}
    later = decoded(message({**MYSQL, "ts_ms": 1001, "pos": 600}, "u", 2))
    replay = decoded(message({**MYSQL, "ts_ms": 1000}, "u", 1))
    assert projection.fold_change(held, later.version, later.row, False, 0.0) is not None
    assert projection.fold_change(held, replay.version, replay.row, False, 0.0) is None


# --- the property: any delivery order, with duplicates, ends at Debezium's last ----------

History = list[tuple[dict[str, Any], str]]


def postgres_history(rng: random.Random) -> History:
    snapshot_lsn = rng.randrange(10_000, 20_000)
    out: History = [({**POSTGRES, "snapshot": "true", "lsn": snapshot_lsn}, "r")]
    lsn = snapshot_lsn
    for _ in range(rng.randrange(1, 8)):
        lsn += rng.randrange(1, 500)
        ts = POSTGRES["ts_ms"] + rng.randrange(-50, 50)  # commit times step back
        out.append(({**POSTGRES, "lsn": lsn, "ts_ms": ts}, "u"))
    return out


def mysql_history(rng: random.Random) -> History:
    file, pos = 3, rng.randrange(100, 1000)
    out: History = [({**MYSQL, "snapshot": "true", "pos": pos, "row": 0}, "r")]
    for _ in range(rng.randrange(1, 6)):
        if rng.random() < 0.3:
            file, pos = file + 1, rng.randrange(4, 100)  # rotation: a smaller pos
        else:
            pos += rng.randrange(1, 300)
        rows = rng.randrange(1, 4)  # a multi-row event touching the key more than once
        for r in range(rows):
            source = {**MYSQL, "file": f"mysql-bin.{file:06d}", "pos": pos, "row": r}
            out.append((source, "u"))
    return out


def sqlserver_history(rng: random.Random) -> History:
    snap = rng.randrange(0x500, 0x600)
    out: History = [
        (
            {**SQLSERVER, "snapshot": "true", "commit_lsn": sql_lsn(0x27, snap, 1),
             "change_lsn": None, "event_serial_no": None},
            "r",
        )
    ]  # fmt: skip
    commit = snap
    for tx in range(rng.randrange(1, 5)):
        # The first transaction was in flight during the snapshot: its changes sit below
        # the snapshot's commit_lsn, its commit above.
        change = snap - rng.randrange(1, 0x100) if tx == 0 else commit + rng.randrange(1, 9)
        commit = max(change, commit) + rng.randrange(1, 0x40)
        for serial in range(1, rng.randrange(2, 4)):
            source = {
                **SQLSERVER,
                "change_lsn": sql_lsn(0x27, change, 2),
                "commit_lsn": sql_lsn(0x27, commit, 3),
                "event_serial_no": str(serial),
            }
            out.append((source, "u"))
    return out


def oracle_history(rng: random.Random) -> History:
    snap = rng.randrange(2_000_000, 3_000_000)
    out: History = [({**ORACLE, "snapshot": "true", "scn": str(snap), "commit_scn": None}, "r")]
    commit = snap
    for tx in range(rng.randrange(1, 5)):
        scn = snap - rng.randrange(1, 100) if tx == 0 else commit + rng.randrange(1, 9)
        commit = max(scn, commit) + rng.randrange(1, 50)
        for _ in range(rng.randrange(1, 3)):
            out.append(({**ORACLE, "scn": str(scn), "commit_scn": str(commit)}, "u"))
            scn += rng.randrange(1, 3)
    return out


def mongodb_history(rng: random.Random) -> History:
    seconds, ordinal = MONGODB["ts_ms"] // 1000, rng.randrange(1, 5)
    out: History = [({**MONGODB, "snapshot": "true", "ts_ms": seconds * 1000, "ord": ordinal}, "r")]
    for _ in range(rng.randrange(1, 6)):
        if rng.random() < 0.4:
            seconds, ordinal = seconds + rng.randrange(1, 3), 1
        else:
            ordinal += 1
        out.append(({**MONGODB, "ts_ms": seconds * 1000, "ord": ordinal}, "u"))
    return out


HISTORIES: dict[str, Callable[[random.Random], History]] = {
    "postgresql": postgres_history,
    "mysql": mysql_history,
    "sqlserver": sqlserver_history,
    "oracle": oracle_history,
    "mongodb": mongodb_history,
}


@pytest.mark.parametrize("connector", sorted(HISTORIES))
def test_any_delivery_order_ends_at_the_last_change(connector: str) -> None:
    rng = random.Random(f"ordering-{connector}")
    for _ in range(300):
        history = HISTORIES[connector](rng)
        messages = []
        for i, (source, op) in enumerate(history):
            if op != "r" and rng.random() < 0.15:
                op = "d"  # deletes order like any change
            messages.append((i, op, message(source, op, float(i + 1))))
        delivered = messages + rng.choices(messages, k=rng.randrange(0, len(messages) + 1))
        rng.shuffle(delivered)
        value: projection.Value | None = None
        for _, _, raw in delivered:
            mapped = decoded(raw)
            new = projection.fold_change(value, mapped.version, mapped.row, mapped.deleted, 0.0)
            value = new if new is not None else value
        last, last_op, last_raw = messages[-1]
        assert value is not None
        assert value["v"] == decoded(last_raw).version, (connector, history)
        assert value["row"]["PriceSale"] == last + 1 and value["d"] == (last_op == "d")
        # The versions of distinct changes are distinct: none is dropped as a duplicate.
        keys = [version_key(*decoded(raw).version) for _, _, raw in messages]
        assert len(set(keys)) == len(keys)


# --- the flattened form (ExtractNewRecordState) ------------------------------------------


def flat_binding(fields: list[str]) -> InputBinding:
    return with_changes(PRICES, format="debezium-flat", flat_fields=fields)


def test_flat_postgres_record_orders_like_the_envelope() -> None:
    binding = flat_binding(["__source_ts_ms", "__lsn", "__op"])
    value = orjson.dumps({**row(5), "__source_ts_ms": 1000, "__lsn": 77, "__op": "u"})
    mapped = decoded(value, binding)
    assert mapped.version == [1000, 77] and mapped.row["PriceSale"] == 5 and not mapped.deleted
    assert "__lsn" not in orjson.dumps(mapped.row).decode()


def test_flat_rewrite_delete_and_sqlserver_fields() -> None:
    fields = ["__source_ts_ms", "__commit_lsn", "__change_lsn", "__event_serial_no"]
    binding = flat_binding(fields)
    base = {
        "__source_ts_ms": 1,
        "__commit_lsn": sql_lsn(0x27, 0xB00, 3),
        "__change_lsn": sql_lsn(0x27, 0xA00, 2),
        "__event_serial_no": 1,
    }
    deleted = decoded(orjson.dumps({**row(5), **base, "__deleted": "true"}), binding)
    assert deleted.deleted and deleted.row["IsActive"] is False
    later = decoded(orjson.dumps({**row(6), **base, "__event_serial_no": 2}), binding)
    assert version_key_newer(later.version_key, deleted.version_key)


def test_flat_mysql_fields() -> None:
    binding = flat_binding(["__source_ts_ms", "__file", "__pos", "__row"])
    base = {"__source_ts_ms": 1, "__file": "mysql-bin.000003", "__pos": 484}
    first = decoded(orjson.dumps({**row(1), **base, "__row": 0}), binding)
    second = decoded(orjson.dumps({**row(2), **base, "__row": 1}), binding)
    assert second.version == [1, 3, 484, 1]
    assert version_key_newer(second.version_key, first.version_key)


def test_flat_fields_are_validated() -> None:
    with pytest.raises(ValueError, match="not one of"):
        flat_binding(["__source_ts_ms", "__color"])
    with pytest.raises(ValueError, match="needs flat_fields"):
        flat_binding([])
    with pytest.raises(ValueError, match="debezium-flat only"):
        with_changes(PRICES, flat_fields=["__lsn"])


# --- valid Debezium output that is not a row change --------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"ts_ms": 1714000000000}, "heartbeat"),
        (
            {"schema": {"name": "io.debezium.connector.common.Heartbeat"}, "payload": {"ts": 1}},
            "heartbeat",
        ),
        ({"status": "BEGIN", "id": "571:53195829", "event_count": None}, "transaction"),
        ({"status": "END", "id": "571:53195829", "event_count": 2}, "transaction"),
        (
            {"source": MYSQL, "databaseName": "inventory", "ddl": "ALTER TABLE t ADD c INT",
             "tableChanges": []},
            "schema_change",
        ),
        ({"before": None, "after": None, "source": POSTGRES, "op": "t", "ts_ms": 1}, "truncate"),
        ({"op": "m", "source": POSTGRES, "message": {"prefix": "x"}}, "message"),
    ],
)  # fmt: skip
def test_non_row_messages_are_signalled_not_errors(value: dict[str, Any], kind: str) -> None:
    with pytest.raises(NotAChange) as caught:
        decode_mapped(orjson.dumps(value), b'{"id":1}', PRICES)
    assert caught.value.kind == kind


def test_flat_heartbeat_and_transaction_are_signalled() -> None:
    binding = flat_binding(["__source_ts_ms", "__lsn"])
    for value, kind in (({"ts_ms": 5}, "heartbeat"), ({"status": "END", "id": "1"}, "transaction")):
        with pytest.raises(NotAChange) as caught:
            decode_mapped(orjson.dumps(value), None, binding)
        assert caught.value.kind == kind

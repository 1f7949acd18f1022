"""Issue 23 item 2: positions compare only within one history of a source.

A new history (MySQL failover: another ``server_id`` / GTID source, binlog files numbered
lower; a re-snapshot after a binlog reset, a restore or a new replication slot: snapshot
reads below the held position) is newer by Kafka arrival; true replays within one history
are still dropped."""

from __future__ import annotations

from typing import Any

from agents.imports import projection
from tests.support.connector_messages import decoded, message, sql_lsn
from tests.support.debezium_sources import MONGODB, MYSQL, ORACLE, POSTGRES, SQLSERVER

OLD_PRIMARY = {**MYSQL, "server_id": 1, "gtid": "aaaa-1111:500", "file": "mysql-bin.000120"}
NEW_PRIMARY = {**MYSQL, "server_id": 2, "gtid": "bbbb-2222:1", "file": "mysql-bin.000003"}


def fold(messages: list[bytes]) -> projection.Value | None:
    """The key's value after folding ``messages`` in this (Kafka) order."""
    value: projection.Value | None = None
    for raw in messages:
        m = decoded(raw)
        new = projection.fold_change(
            value, m.version, m.row, m.deleted, 0.0, m.version_key, m.history, m.snapshot
        )
        value = new if new is not None else value
    return value


def price(value: projection.Value | None) -> Any:
    assert value is not None
    return value["row"]["PriceSale"]


def test_mysql_failover_to_a_primary_with_lower_binlog_files_is_a_new_history() -> None:
    before = message({**OLD_PRIMARY, "pos": 9000}, "u", 1)
    after = message({**NEW_PRIMARY, "pos": 4}, "u", 2)
    later = message({**NEW_PRIMARY, "gtid": "bbbb-2222:2", "pos": 400}, "u", 3)
    assert price(fold([before, after])) == 2
    assert price(fold([before, after, later])) == 3


def test_mysql_replays_within_one_history_are_still_dropped() -> None:
    first = message({**NEW_PRIMARY, "pos": 4}, "u", 1)
    second = message({**NEW_PRIMARY, "gtid": "bbbb-2222:2", "pos": 400}, "u", 2)
    assert price(fold([first, second, first])) == 2  # a connector restart re-sends
    assert price(fold([first, second, second])) == 2


def test_mysql_new_server_id_alone_or_new_gtid_source_alone_is_a_new_history() -> None:
    held = message({**OLD_PRIMARY, "pos": 9000}, "u", 1)
    same_server_new_gtid = message({**OLD_PRIMARY, "gtid": "cccc:1", "pos": 4}, "u", 2)
    assert price(fold([held, same_server_new_gtid])) == 2
    no_gtid = {**OLD_PRIMARY, "gtid": None}
    new_server = message({**no_gtid, "server_id": 3, "file": "mysql-bin.000001", "pos": 4}, "u", 3)
    assert price(fold([message({**no_gtid, "pos": 9000}, "u", 1), new_server])) == 3


def test_mysql_binlog_reset_and_re_snapshot_starts_a_new_history() -> None:
    streamed = message({**OLD_PRIMARY, "pos": 9000}, "u", 1)
    # RESET MASTER, then snapshot.mode=when_needed re-reads the table at mysql-bin.000001.
    reset = {**OLD_PRIMARY, "file": "mysql-bin.000001", "pos": 154, "gtid": "aaaa-1111:1"}
    snapshot = message({**reset, "snapshot": "true"}, "r", 2)
    changed = message({**reset, "pos": 900}, "u", 3)
    assert price(fold([streamed, snapshot])) == 2
    assert price(fold([streamed, snapshot, changed])) == 3
    # A snapshot read at the held position is a duplicate; a streamed change below is a
    # replay: both dropped.
    assert price(fold([streamed, snapshot, message({**reset, "snapshot": "true"}, "r", 9)])) == 2
    assert price(fold([streamed, message({**reset, "pos": 900}, "u", 4)])) == 1


def test_postgres_restore_or_new_slot_re_snapshot_starts_a_new_history() -> None:
    streamed = message({**POSTGRES, "lsn": 90_000_000}, "u", 1)
    snapshot = message({**POSTGRES, "lsn": 1_000, "snapshot": "true"}, "r", 2)
    after = message({**POSTGRES, "lsn": 1_200}, "u", 3)
    assert price(fold([streamed, snapshot, after])) == 3
    # Without the snapshot a lower LSN is a replay (Postgres records carry no history
    # mark: a restore must be followed by a snapshot, see the README).
    assert price(fold([streamed, after])) == 1


def test_sqlserver_restore_re_snapshot_starts_a_new_history() -> None:
    streamed = message(
        {**SQLSERVER, "commit_lsn": sql_lsn(0x90, 1, 1), "change_lsn": sql_lsn(0x90, 1, 1)},
        "u",
        1,
    )
    snapshot = message(
        {**SQLSERVER, "snapshot": "true", "change_lsn": None, "event_serial_no": None,
         "commit_lsn": sql_lsn(0x27, 1, 1)},
        "r",
        2,
    )  # fmt: skip
    assert price(fold([streamed, snapshot])) == 2


def test_oracle_resetlogs_keeps_scns_rising_and_mongodb_re_snapshot() -> None:
    # After RESETLOGS the SCN goes on rising: one history, positions still order.
    before = message({**ORACLE, "scn": "2125544", "commit_scn": "2125544"}, "u", 1)
    after = message({**ORACLE, "scn": "2125600", "commit_scn": "2125600"}, "u", 2)
    assert price(fold([before, after, before])) == 2
    streamed = message({**MONGODB, "ts_ms": 2_000_000_000, "ord": 3}, "u", 1)
    snapshot = message({**MONGODB, "ts_ms": 1_000_000_000, "ord": 1, "snapshot": "true"}, "r", 2)
    assert price(fold([streamed, snapshot])) == 2


def test_values_stored_without_a_history_mark_compare_by_position() -> None:
    held = projection.fold_change(None, decoded(message(OLD_PRIMARY, "u", 1)).version, {}, False, 0)
    assert held is not None and "e" not in held
    replay = decoded(message({**NEW_PRIMARY, "pos": 4}, "u", 2))
    assert (
        projection.fold_change(
            held, replay.version, replay.row, False, 0.0, None, replay.history, False
        )
        is None
    )

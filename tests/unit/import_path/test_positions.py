"""A stored version spelled out: each connector's position parts by name, SQL Server LSNs
as Debezium writes them, and an honest "could be either" where the shape is ambiguous."""

from __future__ import annotations

from agents.imports.positions import named


def test_postgres_lsn_and_the_source_time() -> None:
    assert named([1559033904863, 24023128]) == {
        "ts_ms": 1559033904863,
        "source_time": "2019-05-28T08:58:24.863000+00:00",
        "lsn": 24023128,
    }


def test_sql_server_lsns_read_as_debezium_writes_them() -> None:
    commit = 0x0000002D_00000FD8_0003
    change = 0x0000002D_00000FD8_0001
    low = (1 << 63) - 1
    version = named([1, commit >> 63, commit & low, change >> 63, change & low, 7])
    assert version["commit_lsn"] == "0000002d:00000fd8:0003"
    assert version["change_lsn"] == "0000002d:00000fd8:0001"
    assert version["event_serial_no"] == 7


def test_a_lsn_above_63_bits_survives_the_split() -> None:
    lsn = 0xFFFFFFFF_FFFFFFFF_FFFF
    low = (1 << 63) - 1
    assert named([1, lsn >> 63, lsn & low, 0, 0, 0])["commit_lsn"] == "ffffffff:ffffffff:ffff"


def test_three_parts_are_mysql_or_oracle_unless_the_connector_is_known() -> None:
    unknown = named([1, 3, 484, 0])
    assert unknown["position"] == [3, 484, 0]
    assert "(mysql)" in unknown["position_is"] and "(oracle)" in unknown["position_is"]
    assert named([1, 3, 484, 0], "mysql")["binlog file number"] == 3


def test_no_position_says_time_decides() -> None:
    assert named([5, 0])["position"] == "none: the change time decides"

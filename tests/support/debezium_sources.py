"""``source`` blocks as each Debezium connector documents them
(https://debezium.io/documentation/reference/stable/connectors/<connector>.html, the
"update events" sections), for tests that need a connector's exact position fields."""

from __future__ import annotations

POSTGRES = {  # postgresql.html, "update events"
    "version": "2.5.0.Final",
    "connector": "postgresql",
    "name": "PostgreSQL_server",
    "ts_ms": 1559033904863,
    "snapshot": "false",
    "db": "postgres",
    "sequence": '["24023119","24023128"]',
    "schema": "public",
    "table": "customers",
    "txId": 556,
    "lsn": 24023128,
    "xmin": None,
}
MYSQL = {  # mysql.html, "update events"
    "version": "2.5.0.Final",
    "name": "mysql-server-1",
    "connector": "mysql",
    "ts_ms": 1465581029100,
    "snapshot": "false",
    "db": "inventory",
    "table": "customers",
    "server_id": 223344,
    "gtid": None,
    "file": "mysql-bin.000003",
    "pos": 484,
    "row": 0,
    "thread": 7,
    "query": "UPDATE customers SET first_name='Anne Marie' WHERE id=1004",
}
SQLSERVER = {  # sqlserver.html, "update events"
    "version": "2.5.0.Final",
    "connector": "sqlserver",
    "name": "server1",
    "ts_ms": 1559729995937,
    "snapshot": "false",
    "db": "testDB",
    "schema": "dbo",
    "table": "customers",
    "change_lsn": "00000027:00000ac0:0002",
    "commit_lsn": "00000027:00000ac0:0007",
    "event_serial_no": "2",
}
ORACLE = {  # oracle.html, "update events"
    "version": "2.5.0.Final",
    "connector": "oracle",
    "name": "server1",
    "ts_ms": 1520085811000,
    "txId": "6.9.809",
    "scn": "2125544",
    "commit_scn": "2125544",
    "rs_id": "001234.00012345.0124",
    "ssn": 0,
    "redo_thread": 1,
    "snapshot": "false",
    "db": "ORCLPDB1",
    "schema": "DEBEZIUM",
    "table": "CUSTOMERS",
}
MONGODB = {  # mongodb.html, "update events"
    "version": "2.5.0.Final",
    "connector": "mongodb",
    "name": "fulfillment",
    "ts_ms": 1558965508000,
    "snapshot": "false",
    "db": "inventory",
    "rs": "rs0",
    "collection": "customers",
    "ord": 6,
}

SOURCES = {
    "postgresql": POSTGRES,
    "mysql": MYSQL,
    "sqlserver": SQLSERVER,
    "oracle": ORACLE,
    "mongodb": MONGODB,
}

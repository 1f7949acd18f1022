"""The hostile-input sweep of issue 23: one worker receives, between valid changes on every
partition of its input, a corpus of bad import records (numbers Norce cannot hold, a 2 MB
record, wrong types in every position field of each Debezium connector, binary junk, a
record without a key, ...) and hostile export webhooks. At the end the worker never
exited, every valid change is in Norce at its newest value, every bad record is in the
dead-letter topic with a stage and a reason, every hostile webhook got a 4xx with a
reason, and the worker's RSS stayed bounded."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from norce_simulator import SimulatorConfig, SimulatorServer
from streams.records import DEAD_LETTER_MAX_BYTES, DeadLetter
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import create_topics, produce, read_all
from tests.support.stack import SECRETS, deliver, import_worker, seed_skus, wait_until

pytestmark = pytest.mark.e2e

KEYS = 40
MB = 1024 * 1024
TOKEN_HEADER = "x-norce-webhook-token"
TOKEN = SECRETS["NORCE_SYNC_WEBHOOK_TOKEN"]


def valid(n: int, version: int) -> tuple[bytes, bytes]:
    row = price_row(f"SKU-{n:05d}", float(n * 1000 + version))
    value = envelope("prices", "u", row, lsn=1_000_000 + version)
    return key_bytes(row, PRICE_KEY), orjson.dumps(value)


def bad_row(i: int, **changes: Any) -> dict[str, Any]:
    row = price_row(f"BAD-{i:03d}", 1.0)
    row.update(changes)
    return row


def dbz(i: int, source: dict[str, Any] | None = None, op: str = "u", **row: Any) -> bytes:
    """A Debezium change of a bad key ``BAD-i``; ``source`` replaces fields of the block."""
    value = envelope("prices", op, bad_row(i, **row), lsn=1000 + i)
    if source is not None:
        value["source"] = {**value["source"], **source}
        value["source"] = {k: v for k, v in value["source"].items() if v != "-"}
    return orjson.dumps(value)


MYSQL = {"connector": "mysql", "lsn": "-", "server_id": 1, "file": "mysql-bin.000003", "pos": 4}
SQLSERVER = {"connector": "sqlserver", "lsn": "-", "commit_lsn": "00000027:00000ac0:0007"}
ORACLE = {"connector": "oracle", "lsn": "-", "scn": "2125544", "commit_scn": "2125544"}


def corpus() -> list[tuple[bytes | None, bytes]]:
    """At least 30 records the import must dead-letter, each value distinct."""
    values: list[bytes] = [
        # Numbers Norce cannot hold.
        dbz(0, price_sale="1000000000000000000000000000000"),
        dbz(1, price_sale="1E+999999999"),
        dbz(2, price_sale="NaN"),
        dbz(3, price_sale="-Infinity"),
        dbz(4, quantity_break=str(2**64)),
        dbz(5, cost_purchase="0." + "1" * 60),
        dbz(6, price_sale=[1, 2]),
        # Wrong types in every position field, per connector.
        dbz(7, {"lsn": "abc"}),
        dbz(8, {"lsn": -1}),
        dbz(9, {"lsn": 1.5}),
        dbz(10, {"lsn": "-", "sequence": "not a list"}),
        dbz(11, {**MYSQL, "pos": "x"}),
        dbz(12, {**MYSQL, "file": 5}),
        dbz(13, {**MYSQL, "row": "r"}),
        dbz(14, {**MYSQL, "file": "mysql-bin"}),
        dbz(15, {**SQLSERVER, "commit_lsn": "zz:zz"}),
        dbz(16, {**SQLSERVER, "change_lsn": 12}),
        dbz(17, {**SQLSERVER, "event_serial_no": "x"}),
        dbz(18, {**ORACLE, "scn": "12a"}),
        dbz(19, {**ORACLE, "commit_scn": -5}),
        dbz(20, {**ORACLE, "scn": "9" * 40}),
        # Envelope shapes.
        dbz(21, op="x"),
        orjson.dumps({**orjson.loads(dbz(22)), "after": [1, 2]}),
        orjson.dumps({**orjson.loads(dbz(23)), "source": "nowhere"}),
        orjson.dumps({"before": None, "after": {"part_no": "BAD-024"}, "ts_ms": 1, "x": 24}),
        # Binary junk and JSON that is not an object.
        b"\x00\x01\x02junk-25\xff",
        b"[1, 2, 25.5]",
        b'"a string 27"',
        b"{not json 28",
        base64.b64encode(os.urandom(64)) + b"-29",
        # A 2 MB record.
        dbz(30, currency_code="X" * (2 * MB)),
        b"\x00" * (2 * MB) + b"31",
    ]
    records: list[tuple[bytes | None, bytes]] = [
        (f"bad-{i}".encode(), value) for i, value in enumerate(values)
    ]
    # A record without a key (and no key column to fall back on).
    no_key = envelope("prices", "u", {"price_sale": 1.0, "marker": 32}, lsn=1032)
    records.append((None, orjson.dumps(no_key)))
    return records


def hostile_webhooks(url: str) -> list[tuple[str, dict[str, Any]]]:
    """(what, httpx request arguments): each must be refused with a 4xx and a reason."""
    hook = f"{url}/norce/events/SkuChangedNotification"
    good = orjson.dumps({"ClientId": 1, "PartNo": "H1"})
    auth = {TOKEN_HEADER: TOKEN}
    return [
        ("wrong token", {"url": hook, "content": good, "headers": {TOKEN_HEADER: "nope"}}),
        ("no token", {"url": hook, "content": good}),
        ("2 MB body", {"url": hook, "content": b"{" + b" " * (2 * MB) + b"}", "headers": auth}),
        ("malformed JSON", {"url": hook, "content": b'{"ClientId": 1,', "headers": auth}),
        ("no PartNo", {"url": hook, "content": b'{"ClientId": 1}', "headers": auth}),
        ("binary junk", {"url": hook, "content": b"\x00\xff\xfe junk", "headers": auth}),
        ("a JSON array", {"url": hook, "content": b"[1, 2]", "headers": auth}),
        ("PartNo an object", {"url": hook, "content": b'{"PartNo": {"a": 1}}', "headers": auth}),
        ("empty body", {"url": hook, "content": b"", "headers": auth}),
        ("NaN literal", {"url": hook, "content": b'{"PartNo": NaN}', "headers": auth}),
        (
            "unknown type",
            {"url": f"{url}/norce/events/NoSuchEvent", "content": good, "headers": auth},
        ),
        ("no type", {"url": f"{url}/norce/events", "content": good, "headers": auth}),
    ]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_hostile_inputs_never_stop_the_worker_and_lose_nothing(
    kafka_servers: str, unique: str, tmp_path: Path
) -> None:
    topic = f"erp.public.prices.{unique}"
    # The operator's input topic takes large records; the service copes with them.
    await create_topics(kafka_servers, [topic], 4, {"max.message.bytes": str(8 * MB)})
    bad = corpus()
    assert len(bad) >= 30
    sim_config = SimulatorConfig(port=0, workers=2, lead_time_s=0.2, token_rate_limit=False)
    async with (
        SimulatorServer(sim_config) as sim,
        import_worker(kafka_servers, unique, tmp_path, sim.url) as (worker, _, topics),
    ):
        assert topics["price"] == topic and worker.proc is not None
        # The tenant's catalogue: Norce ignores prices of SKUs it does not have.
        seed_skus(sim, [f"SKU-{n:05d}" for n in range(KEYS)])
        pid = worker.proc.pid
        baseline = rss_mb(pid)
        peak = baseline
        # Valid changes between the bad records, on every partition (40 keys over 4).
        messages: list[tuple[bytes | None, bytes]] = []
        for i, record in enumerate(bad):
            messages.append(valid(i % KEYS, i + 1))
            messages.append(record)
        messages += [valid(n, 1000) for n in range(KEYS)]
        await produce(kafka_servers, topic, messages, raw=True, max_request_size=8 * MB)

        async with httpx.AsyncClient(timeout=30) as http:
            for what, request in hostile_webhooks(worker.url):
                response = await http.post(**request)
                assert 400 <= response.status_code < 500, (what, response.status_code)
                assert response.text.strip(), f"{what}: no reason given"
                peak = max(peak, rss_mb(pid))

        async def all_dead_lettered() -> bool:
            nonlocal peak
            peak = max(peak, rss_mb(pid))
            records = await read_all(kafka_servers, f"dlq-{unique}", timeout=30)
            return len([r for r in records if r.value is not None]) >= len(bad)

        await wait_until(all_dead_lettered, timeout=120, what="every bad record dead-lettered")
        letters = [
            DeadLetter.from_bytes(r.value)
            for r in await read_all(kafka_servers, f"dlq-{unique}", timeout=30)
        ]
        assert all(d.topic == topic and d.stage and d.reason for d in letters)
        for key, value in bad:
            found = [d for d in letters if d.value == value[:DEAD_LETTER_MAX_BYTES]]
            assert len(found) == 1, (key, value[:120])
            assert found[0].key == key
            if len(value) > DEAD_LETTER_MAX_BYTES:
                assert found[0].value_size == len(value)
        assert len(letters) == len(bad)

        expected = {f"SKU-{n:05d}": float(n * 1000 + 1000) for n in range(KEYS)}
        await deliver(worker, sim, expected, timeout=180)
        peak = max(peak, rss_mb(pid))
        assert worker.proc.poll() is None, "the worker exited"
        # Bounded: the 2 MB records are held once each, briefly; nothing accumulates.
        print(f"RSS baseline {baseline:.0f} MB, peak {peak:.0f} MB")
        assert peak < baseline + 250, (baseline, peak)

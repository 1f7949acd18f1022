"""What the export item view says about one entity, from its events, the last record per
target and the digests (pure: no broker)."""

from __future__ import annotations

import orjson
import pytest

from agents.export.targets import OutRecord
from agents.ops import export_trace
from agents.ops.export_trace import Scan, Stored


@pytest.mark.parametrize(
    ("key", "murmur2"),
    [  # Kafka's own murmur2 test vectors (UtilsTest), as signed Java ints
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"abc", 479470107),
    ],
)
def test_the_partition_is_kafkas_default_partitioners(key: bytes, murmur2: int) -> None:
    for partitions in (1, 2, 3, 6, 12):
        expected = (murmur2 & 0x7FFFFFFF) % partitions  # Utils.toPositive(murmur2) % n
        assert export_trace.partition_for(key, partitions) == expected


def test_kinds_are_the_export_paths() -> None:
    assert export_trace.kind_problem("sku", ["sku", "customer"]) is None
    assert "ask for kind sku" in (export_trace.kind_problem("price", ["sku"]) or "")
    assert "no export target wants kind 'company'" in (
        export_trace.kind_problem("company", ["sku"]) or ""
    )


def event(offset: int, t: float, event_type: str = "SkuChangedNotification") -> Stored:
    body = {"event_type": event_type, "kind": "sku", "entity_id": "P1", "received_at": t,
            "body": {"ClientId": 1, "PartNo": "P1"}}  # fmt: skip
    return Stored(offset, int(t * 1000), orjson.dumps(body))


def record(offset: int, t: float, value: bytes | None) -> Stored:
    headers = [("norce-event-type", b"SkuChangedNotification")]
    if value is None:
        headers.append(("norce-deleted", b"true"))
    return Stored(offset, int(t * 1000), value, headers)


def scan(*records: Stored, complete: bool = True, scanned: int = 10) -> Scan:
    return Scan("t", 1, list(records), scanned, complete)


def test_events_newest_first_with_type_and_body_an_undecodable_one_named() -> None:
    view = export_trace.events_view(scan(event(9, 20.0), Stored(5, 15000, b"junk"), event(2, 10.0)))
    assert [e["offset"] for e in view] == [9, 5, 2]
    assert view[0]["event_type"] == "SkuChangedNotification"
    assert view[0]["body"]["PartNo"] == "P1" and view[0]["time"] == 20.0
    assert "not a Norce event" in view[1]["error"]


def test_the_digest_is_enrichments() -> None:
    for value in (b'{"PartNo":"P1"}', None):
        out = OutRecord("search", "sku", "t", b"P1", value, ())
        assert export_trace.digest_of(value) == out.digest


def test_a_target_record_with_its_digests_and_a_deletion() -> None:
    value = b'{"PartNo":"P1","Ean":"1"}'
    digest = export_trace.digest_of(value)
    view = export_trace.target_view("search", scan(record(4, 12.0, value)), digest, digest)
    last = view["last_record"]
    assert last["deleted"] is False and last["value"] == {"PartNo": "P1", "Ean": "1"}
    assert last["digest"] == digest and view["unchanged"] is True
    gone = export_trace.target_view("search", scan(record(5, 13.0, None)), None, digest)
    assert gone["last_record"]["deleted"] is True and gone["unchanged"] is False
    unknown = export_trace.target_view("search", scan(record(4, 12.0, value)), digest, None)
    assert "unchanged" not in unknown  # the lookup failed: not known


def test_a_scan_that_stopped_early_says_so() -> None:
    view = export_trace.target_view("search", scan(complete=False, scanned=50_000), None, None)
    assert view["last_record"] is None
    assert view["note"] == "scan stopped after 50000 records without finding the key"
    assert "note" not in export_trace.target_view("search", scan(), None, None)
    verdict = export_trace.verdict(scan(complete=False, scanned=50_000), [])
    assert verdict == "no event received for this entity in the last 50000 records scanned"


def test_stored_digests_from_the_newest_changelog_record() -> None:
    held = {"p.out.search.sku": "aa", "p.out.marketplace.sku": "bb"}
    assert export_trace.stored_digests(scan(Stored(3, 0, orjson.dumps(held)))) == held
    assert export_trace.stored_digests(scan(Stored(4, 0, None))) == {}  # forgotten
    assert export_trace.stored_digests(scan()) == {}


def targets(*pairs: tuple[float, bool | None]) -> list[dict[str, object]]:
    value = b'{"PartNo":"P1"}'
    digest = export_trace.digest_of(value)
    out = []
    for i, (t, unchanged) in enumerate(pairs):
        current = None if unchanged is None else digest if unchanged else "other"
        out.append(export_trace.target_view(f"t{i}", scan(record(i, t, value)), digest, current))
    return out


def test_the_verdict_says_why_a_newer_event_produced_nothing() -> None:
    events = scan(event(7, 30.0), event(3, 10.0))
    assert export_trace.verdict(scan(), []) == "no event received for this entity"
    no_record = [export_trace.target_view("t0", scan(), None, None)]
    assert export_trace.verdict(events, no_record).startswith("events received, no record")
    assert export_trace.verdict(events, targets((31.0, True), (31.0, True))) == (
        "the newest event produced a record for every target"
    )
    assert export_trace.verdict(events, targets((11.0, True), (11.0, True))) == (
        "unchanged: the newest event's lookup maps to the last record of t0, t1 (same digest), "
        "so nothing was produced"
    )
    assert export_trace.verdict(events, targets((11.0, False), (31.0, True))).startswith(
        "Query now maps to a different record for t0"
    )
    assert "not known" in export_trace.verdict(events, targets((11.0, None)))

"""The fused hot path ``decode_mapped`` against the reference path, and version keys.

The reference is ``to_mapped(decode(...))`` (``tests/support/reference_path.py``). The
cases are the messages of ``tests/support/cdc_messages.py`` (the malformed-message lists
are also test_cdc.py's parametrised cases, so a case added there is covered here too) and
the rows of ``tests/support/mapping_rows.py``, which test_mapping.py maps.
"""

from __future__ import annotations

import itertools
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.config.sync_config import InputBinding, load_config
from agents.imports.cdc import NotAChange, compile_decoder, decode_mapped
from streams.records import Mapped, PipelineError, Version, version_key, version_key_newer
from tests.support import cdc_messages as cdc
from tests.support.cdc_messages import (
    DEBEZIUM_INVALID,
    DEBEZIUM_NOT_DECODABLE,
    PLAIN_INVALID,
    PLAIN_NOT_OBJECTS,
    invalid_debezium,
)
from tests.support.mapping_rows import ITEM_ROW, PIM_ROW, PRICE_KEY_COLUMNS, PRICE_ROW, key_only
from tests.support.reference_path import MappedChange, reference_mapped
from tests.support.sync_config import convert, with_changes

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "example.yaml"
CONFIG = load_config(EXAMPLE)
PRICES = CONFIG.binding_for_topic("erp.public.prices")
BINDINGS: dict[str, InputBinding] = {
    "prices": PRICES,
    "prices-no-key-columns": with_changes(PRICES, key_columns=[]),
    "plain": with_changes(PRICES, format="plain", topic="erp.plain.prices"),
    "plain-no-key-columns": with_changes(
        PRICES, format="plain", topic="erp.plain.prices", key_columns=[]
    ),
    "items": CONFIG.binding_for_topic("erp.public.items"),
    "pim": CONFIG.binding_for_topic("pim.public.products"),
    "customers": InputBinding(
        topic="erp.public.customers",
        source="erp",
        kind="customer",
        mapping={"Code": "code", "IsActive": {"from": "active", "convert": "bool"}},
        owned_fields={"CustomerFieldsThatAreSet": ["IsActive"]},
    ),
}


def dbz(op: str, before: Any, after: Any, **kw: Any) -> bytes:
    return orjson.dumps(cdc.envelope(op, before, after, **kw))


def source_msg(source: dict[str, Any]) -> bytes:
    return orjson.dumps({"before": None, "after": cdc.ROW, "source": source, "op": "u", "ts_ms": 5})


def without(row: dict[str, Any], column: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != column}


def _cases() -> list[Any]:
    row, key = cdc.ROW, cdc.key_bytes()
    before_key_only = key_only(row, tuple(cdc.KEY))
    precise = {**row, **cdc.PRECISE}
    mysql = {"connector": "mysql", "ts_ms": 1714000000000, "file": "mysql-bin.000003", "pos": 154}
    sqlserver = {
        "connector": "sqlserver",
        "ts_ms": 1714000000000,
        "change_lsn": "00000025:00000d78:0003",
        "commit_lsn": "00000025:00000d78:0005",
    }
    cases: list[tuple[str, str, bytes | None, bytes | None]] = [
        ("create", "prices", dbz("c", None, row), key),
        ("update", "prices", dbz("u", {**row, "price_sale": 1.0}, row), key),
        ("snapshot-read", "prices", dbz("r", None, row), key),
        ("delete-key-only", "prices", dbz("d", before_key_only, None), key),
        ("delete-full", "prices", dbz("d", row, None), key),
        ("delete-from-kafka-key", "prices", dbz("d", None, None), key),
        ("delete-no-before-no-key", "prices", dbz("d", None, None), None),
        ("tombstone", "prices", None, key),
        ("kafka-key", "prices-no-key-columns", dbz("u", None, row), key),
        (
            "wrapped-kafka-key",
            "prices-no-key-columns",
            dbz("u", None, row),
            orjson.dumps({"schema": {"type": "struct"}, "payload": {"id": 77}}),
        ),
        ("no-kafka-key", "prices-no-key-columns", dbz("c", None, row), None),
        ("kafka-key-not-json", "prices-no-key-columns", dbz("c", None, row), b"A-100"),
        ("raw-decimal", "prices", dbz("u", None, {**row, "price_sale": "ThY="}), key),
        ("schema-decimals", "prices", cdc.wrapped(cdc.envelope("u", None, precise)), key),
        ("schema-delete", "prices", cdc.wrapped(cdc.envelope("d", precise, None)), key),
        (
            "schema-null-decimal",
            "prices",
            cdc.wrapped(cdc.envelope("c", None, {**precise, "price_recommended": None})),
            key,
        ),
        ("schema-null-payload", "prices", cdc.wrapped(None), key),
        ("schema-snapshot", "prices", cdc.wrapped(cdc.envelope("r", None, precise)), key),
        (
            "payload-not-object",
            "prices",
            orjson.dumps({"schema": cdc.ENVELOPE_SCHEMA, "payload": [1]}),
            key,
        ),
        (
            "bad-decimal-bytes",
            "prices",
            cdc.wrapped(cdc.envelope("u", None, {**precise, "price_sale": "@@"})),
            key,
        ),
        (
            "decimal-wrong-type",
            "prices",
            cdc.wrapped(cdc.envelope("u", None, {**precise, "cost_unit": 1.28})),
            key,
        ),
        ("mysql", "prices", source_msg(mysql), key),
        ("mysql-next-file", "prices", source_msg({**mysql, "file": "mysql-bin.000004"}), key),
        ("sqlserver", "prices", source_msg(sqlserver), key),
        ("sqlserver-commit", "prices", source_msg({**sqlserver, "change_lsn": None}), key),
        ("oracle", "prices", source_msg({"ts_ms": 1, "scn": "123456"}), key),
        ("oracle-bad-scn", "prices", source_msg({"ts_ms": 1, "scn": 5}), key),
        ("mysql-bad-file", "prices", source_msg({**mysql, "file": "bin"}), key),
        ("unknown-connector", "prices", source_msg({"connector": "x", "ts_ms": 99}), key),
        ("envelope-ts-ms", "prices", source_msg({"lsn": 10}), key),
        ("negative-lsn", "prices", source_msg({"ts_ms": 1, "lsn": -1}), key),
        ("no-ts-ms", "prices", source_msg({"lsn": 10, "ts_ms": "x"}), key),
    ]
    for i, (value, _reason) in enumerate(DEBEZIUM_NOT_DECODABLE):
        cases.append((f"malformed-decode-{i}", "prices", value, key))
    for i, (change, _reason) in enumerate(DEBEZIUM_INVALID):
        cases.append((f"malformed-validate-{i}", "prices", invalid_debezium(change), key))
    plain: list[tuple[str, dict[str, Any]]] = [
        ("upsert", {}),
        ("no-ts-ms", {"version": 41, "ts_ms": ...}),
        ("delete-without-data", {"op": "delete", "data": ...}),
        ("key-from-columns", {"key": ...}),
    ]
    plain += [(f"malformed-{i}", fields) for i, (fields, _reason) in enumerate(PLAIN_INVALID)]
    for name, fields in plain:
        cases.append((f"plain-{name}", "plain", cdc.plain_msg(**fields), None))
    cases.append(("plain-tombstone", "plain", None, b"k"))
    cases.append(("plain-missing-key", "plain-no-key-columns", cdc.plain_msg(key=...), None))
    for i, value in enumerate(PLAIN_NOT_OBJECTS):
        cases.append((f"plain-not-object-{i}", "plain", value, None))
    # The rows of the mapping tests, as Debezium messages of their bindings.
    price, item, product = PRICE_ROW, ITEM_ROW, PIM_ROW
    price_key_only = key_only(price, PRICE_KEY_COLUMNS)
    cases += [
        ("map-price", "prices", dbz("u", None, price), key),
        ("map-price-delete", "prices", dbz("d", price_key_only, None), key),
        ("map-price-delete-full", "prices", dbz("d", price, None), key),
        ("map-price-bad-int", "prices", dbz("u", None, {**price, "quantity_break": 1.5}), key),
        ("map-price-missing", "prices", dbz("u", None, without(price, "currency_code")), key),
        ("map-price-not-str", "prices", dbz("u", None, {**price, "currency_code": 5}), key),
        ("map-customer", "customers", dbz("u", None, {"code": 7, "active": "n"}), b'{"code":7}'),
        ("map-customer-delete", "customers", dbz("d", {"code": 7, "active": "y"}, None), b"7"),
        ("map-customer-bad-bool", "customers", dbz("u", None, {"code": 7, "active": "x"}), b"7"),
        ("map-item", "items", dbz("u", None, item), None),
        ("map-item-no-part-no", "items", dbz("u", None, {**item, "part_no": 5}), None),
        ("map-pim", "pim", dbz("u", None, product), None),
        ("map-pim-delete", "pim", dbz("d", {"product_code": "P1"}, None), None),
        ("map-pim-missing", "pim", dbz("u", None, {"product_code": "P1"}), None),
    ]
    return [pytest.param(binding, value, k, id=name) for name, binding, value, k in cases]


CASES = _cases()


def outcome(fn: Any, value: bytes | None, key: bytes | None, binding: InputBinding) -> Any:
    """A comparable result: the Mapped fields (row as JSON, so 1 != 1.0 != True), None, or
    the error's type, stage and reason."""
    try:
        result = fn(value, key, binding)
    except PipelineError as exc:
        return (type(exc).__name__, exc.stage, exc.reason)
    except NotAChange as exc:
        return ("NotAChange", exc.kind)
    if result is None:
        return None
    return (
        result.state_key,
        result.version_key,
        result.version,
        orjson.dumps(result.row),
        result.deleted,
    )


@pytest.mark.parametrize(("binding", "value", "key"), CASES)
def test_decode_mapped_equals_decode_then_to_mapped(
    binding: str, value: bytes | None, key: bytes | None
) -> None:
    b = BINDINGS[binding]
    expected = outcome(reference_mapped, value, key, b)
    assert outcome(decode_mapped, value, key, b) == expected
    # The compiled decoder, used directly, is the same function.
    decoder = compile_decoder(b)
    assert outcome(lambda v, k, _b: decoder(v, k), value, key, b) == expected


def test_the_cases_reach_every_outcome() -> None:
    kinds: Counter[str] = Counter()
    for case in CASES:
        binding, value, key = case.values
        result = outcome(reference_mapped, value, key, BINDINGS[binding])
        if result is None:
            kinds["none"] += 1
        elif isinstance(result[0], str) and result[0].endswith("Error"):
            kinds[f"{result[0]}/{result[1]}"] += 1
        else:
            kinds["mapped-delete" if result[4] else "mapped"] += 1
    assert set(kinds) == {
        "mapped",
        "mapped-delete",
        "none",
        "CdcError/decode",
        "CdcError/validate",
        "MappingError/map",
    }, kinds


def test_mapped_fields() -> None:
    mapped = decode_mapped(dbz("u", None, cdc.ROW, lsn=7, ts_ms=9), cdc.key_bytes(), PRICES)
    assert mapped is not None
    assert mapped.state_key == "erp|price|A-100|STD|1"
    assert mapped.version == [9, 7]
    assert mapped.version_key == Version(ts_ms=9, position=7).sort_key
    assert mapped.row["PriceSale"] == 199.9 and mapped.row["IsActive"] is True
    assert mapped.deleted is False
    assert isinstance(mapped, Mapped) and mapped._fields == (
        "state_key",
        "version_key",
        "version",
        "row",
        "deleted",
        "history",
        "snapshot",
    )


def test_the_reference_state_key_is_the_fused_one() -> None:
    assert MappedChange.make_state_key("erp", "price", "A|STD|1") == "erp|price|A|STD|1"
    mapped = decode_mapped(dbz("u", None, cdc.ROW), cdc.key_bytes(), PRICES)
    assert mapped is not None
    assert mapped.state_key == MappedChange.make_state_key("erp", "price", "A-100|STD|1")


def test_decoded_rows_are_not_shared_between_changes() -> None:
    pim = BINDINGS["pim"]
    product = {"product_code": "P1", "manufacturer_code": "A", "manufacturer_name": "A"}
    product |= {f"{f}_{c}": "x" for f in ("name", "title", "description") for c in ("sv", "en")}
    product |= {"main_part_no": "P1-A", "sku_comment_sv": ""}
    first = decode_mapped(dbz("u", None, product), None, pim)
    second = decode_mapped(dbz("u", None, product), None, pim)
    assert first is not None and second is not None
    first.row["Cultures"][0]["CultureCode"] = "changed"
    assert second.row["Cultures"][0]["CultureCode"] == "sv-SE"


def test_decode_mapped_follows_a_new_binding_object() -> None:
    value = dbz("u", None, cdc.ROW)
    assert decode_mapped(value, cdc.key_bytes(), PRICES) is not None
    other = with_changes(PRICES, source="pim", owned_fields=PRICES.owned_fields)
    mapped = decode_mapped(value, cdc.key_bytes(), other)
    assert mapped is not None and mapped.state_key == "pim|price|A-100|STD|1"


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("norce_sync_fused_hooks")

    def tag(row: dict[str, Any], context: Any) -> dict[str, Any]:
        return {**row, "Tag": f"{context.source_key}@{context.version.position}:{context.op}"}

    def boom(row: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("no")

    module.tag = tag  # type: ignore[attr-defined]
    module.boom = boom  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "norce_sync_fused_hooks", module)
    return module


@pytest.mark.parametrize("hook", ["tag", "boom"])
def test_hooks_get_the_change_event(hooks: types.ModuleType, hook: str) -> None:
    binding = with_changes(PRICES, hook=f"norce_sync_fused_hooks:{hook}")
    for value in (dbz("u", None, cdc.ROW, lsn=42), dbz("d", cdc.ROW, None, lsn=43)):
        expected = outcome(reference_mapped, value, cdc.key_bytes(), binding)
        assert outcome(decode_mapped, value, cdc.key_bytes(), binding) == expected
    if hook == "tag":
        mapped = decode_mapped(dbz("u", None, cdc.ROW, lsn=42), cdc.key_bytes(), binding)
        assert mapped is not None and mapped.row["Tag"] == "A-100|std|1@42:u"


# --- version keys ------------------------------------------------------------------------


def rule_newer(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """The rule as Version documents it, written out independently: (ts_ms, position)."""
    (a_ts, a_pos), (b_ts, b_pos) = a, b
    if a_pos and b_pos:
        return (a_pos, a_ts) > (b_pos, b_ts)
    return (a_ts, a_pos) > (b_ts, b_pos)


GRID = list(itertools.product((-1, 0, 1, 2, 5), (0, 1, 2, 7, 0x0000002500000D780005)))


def test_version_key_newer_is_the_documented_rule() -> None:
    for a, b in itertools.product(GRID, GRID):
        assert version_key_newer(version_key(*a), version_key(*b)) == rule_newer(a, b), (a, b)


def test_plain_tuple_comparison_is_exact_within_one_mode() -> None:
    for a, b in itertools.product(GRID, GRID):
        ka, kb = version_key(*a), version_key(*b)
        if ka[0] == kb[0]:
            assert (ka > kb) == rule_newer(a, b), (a, b)
            assert (ka == kb) == (a == b), (a, b)


def test_a_missing_position_lets_time_decide() -> None:
    # Plain tuple order would put the positioned version first; the rule says time decides.
    with_position, without = version_key(10, 5), version_key(11, 0)
    assert with_position > without
    assert version_key_newer(without, with_position)
    assert not version_key_newer(with_position, without)


def test_version_comparisons_follow_the_keys() -> None:
    for a, b in itertools.product(GRID, GRID):
        va, vb = Version(ts_ms=a[0], position=a[1]), Version(ts_ms=b[0], position=b[1])
        assert (va > vb) == rule_newer(a, b), (a, b)
        assert (va < vb) == rule_newer(b, a), (a, b)
        assert (va >= vb) == (not rule_newer(b, a)), (a, b)
        assert (va <= vb) == (not rule_newer(a, b)), (a, b)
        assert (va == vb) == (a == b), (a, b)


def test_decoded_versions_sort_by_log_position() -> None:
    # Postgres: a later LSN with an earlier commit time is still newer.
    first = decode_mapped(dbz("u", None, cdc.ROW, lsn=100, ts_ms=2000), cdc.key_bytes(), PRICES)
    later = decode_mapped(dbz("u", None, cdc.ROW, lsn=101, ts_ms=1999), cdc.key_bytes(), PRICES)
    assert first is not None and later is not None
    assert later.version_key > first.version_key
    assert version_key_newer(later.version_key, first.version_key)
    assert not version_key_newer(first.version_key, first.version_key)


# --- compiled conversion chains (one callable per field) ---------------------------------


@pytest.mark.parametrize(
    ("conversion", "value", "expected"),
    [
        (["strip", "upper"], 5, "strip needs a string, got int"),
        (["upper", "strip"], None, None),  # nulls skip conversions
        (["lower", "strip"], " SEK ", "sek"),
        (["int", "str"], " 7 ", "7"),
        (["strip", "int"], " x ", "not a number"),
        (["decimal", "positive"], "0.5", True),
    ],
)
def test_conversion_chains(conversion: list[str], value: Any, expected: Any) -> None:
    try:
        result = convert(conversion, value)
    except PipelineError as exc:
        assert exc.stage == "map" and expected in exc.reason
        assert exc.reason.startswith("Out from 'col': ")
        return
    assert result == expected and type(result) is type(expected)

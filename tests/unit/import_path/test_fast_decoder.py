"""The one-function decoder of the common change (``cdc._fast_debezium``: a Debezium JSON
insert, update or snapshot read from Postgres) returns exactly what the general path
returns, every field of ``Mapped`` included, and leaves every other message, and every
fault, to the general path and its errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agents.config.sync_config import load_config
from agents.imports import cdc
from streams.records import PipelineError
from tests.support import cdc_messages
from tests.support.sync_config import EXAMPLE, with_changes

PRICES = load_config(EXAMPLE).binding_for_topic("erp.public.prices")
KEY = cdc_messages.key_bytes()
ROW = cdc_messages.ROW


def message(op: str = "u", after: Any = ROW, **changes: Any) -> bytes:
    doc = cdc_messages.envelope(op, None, after)
    source = changes.pop("source", {})  # None: no source block; ...: a field left out
    if source is None:
        doc["source"] = None
    else:
        doc["source"] = {k: v for k, v in {**doc["source"], **source}.items() if v is not ...}
    doc.update(changes)
    return orjson.dumps(doc)


def general(value: bytes, key: bytes | None, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patched:
        patched.setattr(cdc, "_fast_debezium", lambda binding, prefix: None)
        return outcome(cdc.compile_decoder(PRICES), value, key)


def outcome(decoder: Any, value: bytes, key: bytes | None) -> Any:
    try:
        result = decoder(value, key)
    except PipelineError as exc:
        return (type(exc).__name__, exc.stage, exc.reason)
    except cdc.NotAChange as exc:
        return ("NotAChange", exc.kind)
    if result is None:
        return None
    # Every field; the row as JSON so that 1, 1.0 and True differ.
    return (*result[:3], orjson.dumps(result.row), *result[4:])


FAST = [
    ("update", message()),
    ("create", message("c")),
    ("snapshot-read", message("r")),
    ("lsn-zero", message(source={"lsn": 0})),
    ("int-key-column", message(after={**ROW, "part_no": 42})),
]
GENERAL = [
    ("delete", message("d", after=None, before=ROW)),
    ("no-lsn", message(source={"lsn": ...})),
    ("negative-lsn", message(source={"lsn": -1})),
    ("text-lsn", message(source={"lsn": "24023928"})),
    ("commit-lsn", message(source={"commit_lsn": "00000025:00000d78:0005"})),
    ("mysql-server", message(source={"server_id": 1, "file": "bin.000001", "pos": 4})),
    ("gtid", message(source={"gtid": "abc:1"})),
    ("no-ts-ms", message(source={"ts_ms": ...})),
    ("wrapped", orjson.dumps({"schema": cdc_messages.ENVELOPE_SCHEMA, "payload": None})),
    ("payload-without-schema", message(payload=1)),
    ("float-key-column", message(after={**ROW, "quantity_break": 1.0})),
    ("bool-key-column", message(after={**ROW, "quantity_break": True})),
    ("empty-key-column", message(after={**ROW, "part_no": ""})),
    ("missing-key-column", message(after={k: v for k, v in ROW.items() if k != "part_no"})),
    ("mapping-error", message(after={**ROW, "currency_code": 5})),
    ("not-a-number", message(after={**ROW, "price_sale": "x"})),
    ("after-null", message(after=None)),
    ("after-text", message(after="{}")),
    ("no-source", message(source=None)),
    ("unknown-op", message("x")),
    ("truncate", message("t")),
    ("not-json", b"{"),
    ("array", b"[1]"),
]


@pytest.mark.parametrize(("value", "key"), [(v, KEY) for _, v in FAST], ids=[n for n, _ in FAST])
def test_the_common_change_takes_the_fast_path_and_equals_the_general(
    value: bytes, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = cdc._fast_debezium(PRICES, f"{PRICES.source}|{PRICES.kind}|")
    assert fast is not None and fast(value, key) is not None
    assert outcome(cdc.compile_decoder(PRICES), value, key) == general(value, key, monkeypatch)


@pytest.mark.parametrize(
    ("value", "key"), [(v, KEY) for _, v in GENERAL], ids=[n for n, _ in GENERAL]
)
def test_every_other_message_is_left_to_the_general_path(
    value: bytes, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = cdc._fast_debezium(PRICES, f"{PRICES.source}|{PRICES.kind}|")
    assert fast is not None and fast(value, key) is None
    assert outcome(cdc.compile_decoder(PRICES), value, key) == general(value, key, monkeypatch)


def test_bindings_the_fast_path_does_not_know_have_none() -> None:
    prefix = "erp|price|"
    assert cdc._fast_debezium(with_changes(PRICES, key_columns=[]), prefix) is None
    plain = with_changes(PRICES, format="plain", topic="erp.plain.prices")
    assert cdc._fast_debezium(plain, prefix) is None

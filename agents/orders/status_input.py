"""ERP order status changes as they arrive: a Debezium JSON envelope (with or without
the ``schema``/``payload`` wrapper) or the plain format ``{"key", "op", "version",
"data"}``, decoded to the row and its version.

The version orders the changes of one order as the source wrote them: PostgreSQL
``source.lsn`` (then ``sequence``), MySQL ``file``/``pos``/``row``, SQL Server
``commit_lsn``/``change_lsn``, Oracle ``scn``; else ``ts_ms``. Plain: ``version``.
Deletes and tombstones carry no status: ``None``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson


class StatusChangeError(ValueError):
    pass


class StatusChange(NamedTuple):
    row: dict[str, Any]
    version: list[Any]


def decode_status_change(value: bytes | None, fmt: str) -> StatusChange | None:
    if value is None:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise StatusChangeError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise StatusChangeError("not a JSON object")
    if fmt == "plain":
        if doc.get("op") == "delete":
            return None
        data, version = doc.get("data"), doc.get("version")
        if not isinstance(data, dict) or not isinstance(version, int) or version < 0:
            raise StatusChangeError("plain change needs a data object and an int version >= 0")
        return StatusChange(data, [version])
    if "payload" in doc and "schema" in doc:
        doc = doc["payload"]
        if doc is None:
            return None
    if doc.get("op") == "d":
        return None
    after = doc.get("after")
    if not isinstance(after, dict):
        raise StatusChangeError("Debezium change without an 'after' row")
    return StatusChange(after, _position(doc.get("source") or {}, doc.get("ts_ms")))


def _position(source: dict[str, Any], ts_ms: Any) -> list[Any]:
    for fields in (
        ("lsn", "sequence"),
        ("file", "pos", "row"),
        ("commit_lsn", "change_lsn", "event_serial_no"),
        ("scn", "commit_scn"),
    ):
        if source.get(fields[0]) is not None:
            return [str(source.get(f) or "") if f == "sequence" else source.get(f) for f in fields]
    return [source.get("ts_ms") or ts_ms or 0]


def newer(version: list[Any], held: list[Any] | None) -> bool:
    """Whether ``version`` comes after ``held`` (None: nothing sent yet)."""
    if held is None:
        return True
    try:
        return bool(version > held)
    except TypeError:  # mixed forms (a connector changed): arrival order decides
        return True

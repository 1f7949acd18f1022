"""A stored version (``[source.ts_ms, *position]``) spelled out for people: which part is
the LSN, the binlog file and position, the SCN. The decoder (``agents.imports.cdc``)
writes the positions; README "Accepted input forms" gives the rule per connector."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# What each position part is, per connector, in stored order.
POSITION_PARTS: dict[str, tuple[str, ...]] = {
    "postgresql": ("lsn",),
    "mysql": ("binlog file number", "pos", "row"),
    "mariadb": ("binlog file number", "pos", "row"),
    "sqlserver": ("commit_lsn high", "commit_lsn low", "change_lsn high", "change_lsn low",
                  "event_serial_no"),
    "oracle": ("commit_scn", "scn", "transaction.total_order"),
    "mongodb": ("oplog second", "ord"),
}  # fmt: skip

# A stored value does not say its connector; the shape does, except MySQL against Oracle.
_BY_LENGTH = {1: ("postgresql",), 2: ("mongodb",), 3: ("mysql", "oracle"), 5: ("sqlserver",)}
_LOW_63 = (1 << 63) - 1


def _sql_lsn(high: int, low: int) -> str:
    """A SQL Server LSN as Debezium writes it (``0000002d:00000fd8:0003``)."""
    text = f"{(high << 63) | (low & _LOW_63):020x}"
    return f"{text[:8]}:{text[8:16]}:{text[16:]}"


def named(parts: list[Any], connector: str | None = None) -> dict[str, Any]:
    """``{"ts_ms": ..., <part name>: value, ...}``; ``position`` (a list) when the
    connector is not known and the shape could be several."""
    if not parts:
        return {}
    ts_ms, position = parts[0], list(parts[1:])
    out: dict[str, Any] = {"ts_ms": ts_ms}
    if isinstance(ts_ms, int) and ts_ms > 0:
        out["source_time"] = datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat()
    candidates = (connector,) if connector in POSITION_PARTS else _BY_LENGTH.get(len(position))
    if position == [0]:
        out["position"] = "none: the change time decides"
    elif candidates and len(candidates) == 1:
        names = POSITION_PARTS[candidates[0]]
        if len(names) != len(position):
            out["position"] = position
        elif candidates[0] == "sqlserver":
            out["commit_lsn"] = _sql_lsn(position[0], position[1])
            out["change_lsn"] = _sql_lsn(position[2], position[3])
            out["event_serial_no"] = position[4]
        else:
            out.update(zip(names, position, strict=True))
    else:
        out["position"] = position
        if candidates:
            out["position_is"] = " or ".join(
                f"{'/'.join(POSITION_PARTS[c])} ({c})" for c in candidates
            )
    return out

"""The event-sourced projection: pure transitions of the state and pending tables.

Table values are plain dicts (encoded with orjson) rather than models: the state agent
touches them once per change, and a million-key full import reads every one of them.

- state ``source|kind|key`` -> ``{"v": [ts_ms, position], "row": {...}, "d": deleted}``
- pending ``source|kind|key`` -> ``{"v": [ts_ms, position], "p": partition, "t": since}``
"""

from __future__ import annotations

from typing import Any

from streams.records import Version

StateValue = dict[str, Any]
PendingValue = dict[str, Any]


def version_of(value: StateValue | PendingValue) -> Version:
    ts_ms, position = value["v"]
    return Version.trusted(ts_ms=ts_ms, position=position)


def apply_change(
    current: StateValue | None, version: Version, row: dict[str, Any], deleted: bool
) -> StateValue | None:
    """The new state value, or ``None`` when the change is not newer than what is held.

    Equal versions are duplicates (Debezium re-delivers after a connector restart) and
    are dropped like older ones: no delta may ever carry an older value.
    """
    if current is not None and not version > version_of(current):
        return None
    if deleted and current is not None:
        # A delete's before-image may hold only the key: keep the last known values, so
        # the deactivation does not blank the fields this source owns.
        row = {**current["row"], **row}
    return {"v": [version.ts_ms, version.position], "row": row, "d": deleted}


def pending_after_change(
    state: StateValue, partition: int, now: float, previous: PendingValue | None
) -> PendingValue:
    """Pending entry for a key whose state just advanced; keeps the first pending time."""
    since = previous["t"] if previous is not None else now
    return {"v": state["v"], "p": partition, "t": since}


def still_pending_after_submit(pending: PendingValue | None, sent: list[int]) -> bool:
    """A key leaves pending only if the version sent is still the one pending: a change
    that arrived while the job was being posted must go out with the next delta."""
    return pending is not None and list(pending["v"]) != list(sent)

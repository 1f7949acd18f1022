"""The state and pending transitions: newer wins, older and duplicates are dropped,
deletes keep the last known values, and a key leaves pending only at the version sent."""

from __future__ import annotations

from agents.imports.projection import apply_change, pending_after_change, still_pending_after_submit
from streams.records import Version


def v(ts: int, pos: int = 0) -> Version:
    return Version(ts_ms=ts, position=pos)


def test_first_change_is_taken() -> None:
    new = apply_change(None, v(10, 5), {"PriceSale": 1}, False)
    assert new == {"v": [10, 5], "row": {"PriceSale": 1}, "d": False}


def test_newer_replaces_older_and_duplicates_are_dropped() -> None:
    held = apply_change(None, v(10, 5), {"PriceSale": 1}, False)
    assert apply_change(held, v(11, 6), {"PriceSale": 2}, False)["row"] == {"PriceSale": 2}
    assert apply_change(held, v(10, 5), {"PriceSale": 9}, False) is None  # redelivery
    assert apply_change(held, v(12, 4), {"PriceSale": 9}, False) is None  # older position


def test_delete_keeps_the_last_known_values_and_deactivates() -> None:
    held = apply_change(None, v(10, 5), {"PartNo": "A", "PriceSale": 1, "IsActive": True}, False)
    deleted = apply_change(held, v(11, 6), {"PartNo": "A", "IsActive": False}, True)
    assert deleted == {
        "v": [11, 6],
        "row": {"PartNo": "A", "PriceSale": 1, "IsActive": False},
        "d": True,
    }


def test_pending_keeps_its_first_time_and_follows_the_state_version() -> None:
    state = {"v": [11, 6], "row": {}, "d": False}
    first = pending_after_change(state, 3, 100.0, None)
    again = pending_after_change({**state, "v": [12, 7]}, 3, 105.0, first)
    assert first == {"v": [11, 6], "p": 3, "t": 100.0}
    assert again == {"v": [12, 7], "p": 3, "t": 100.0}


def test_key_leaves_pending_only_at_the_version_sent() -> None:
    held = {"v": [12, 7], "p": 0, "t": 1.0}
    assert not still_pending_after_submit(held, [12, 7])
    assert still_pending_after_submit(held, [11, 6])  # a newer change came meanwhile
    assert not still_pending_after_submit(None, [11, 6])

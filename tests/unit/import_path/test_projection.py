"""The projection's pure transitions: newer changes win, a key leaves pending only at the
version sent, unchanged values are not sent twice, requeue forgets what was sent."""

from __future__ import annotations

from agents.imports import projection


def v(position: int) -> list[int]:
    return [1_000, position]


def test_newer_change_replaces_and_becomes_pending() -> None:
    first = projection.fold_change(None, v(1), {"PartNo": "A", "Price": 1}, False, now=10.0)
    assert first is not None and first["p"] == 10.0
    second = projection.fold_change(first, v(2), {"PartNo": "A", "Price": 2}, False, now=11.0)
    assert second is not None
    assert second["row"]["Price"] == 2
    assert second["p"] == 10.0  # pending since the first change


def test_older_or_equal_change_is_dropped() -> None:
    held = projection.fold_change(None, v(5), {"Price": 5}, False, now=1.0)
    assert projection.fold_change(held, v(4), {"Price": 4}, False, now=2.0) is None
    assert projection.fold_change(held, v(5), {"Price": 5}, False, now=2.0) is None


def test_delete_keeps_last_known_fields() -> None:
    held = projection.fold_change(None, v(1), {"PartNo": "A", "Price": 5}, False, now=1.0)
    deleted = projection.fold_change(held, v(2), {"PartNo": "A"}, True, now=2.0)
    assert deleted is not None
    assert deleted["row"] == {"PartNo": "A", "Price": 5}
    assert deleted["d"] is True


def test_mark_sent_only_at_the_version_sent() -> None:
    held = projection.fold_change(None, v(1), {"Price": 1}, False, now=1.0)
    newer = projection.fold_change(held, v(2), {"Price": 2}, False, now=2.0)
    assert projection.mark_sent(newer, [1_000, 1]) is None  # a newer change is still due
    sent = projection.mark_sent(newer, [1_000, 2])
    assert sent is not None and not projection.is_pending(sent)
    assert projection.mark_sent(sent, [1_000, 2]) is None  # idempotent


def test_change_back_to_the_sent_value_is_not_pending() -> None:
    held = projection.fold_change(None, v(1), {"Price": 1}, False, now=1.0)
    sent = projection.mark_sent(held, [1_000, 1])
    same = projection.fold_change(sent, v(2), {"Price": 1}, False, now=2.0)
    assert same is not None and not projection.is_pending(same)
    changed = projection.fold_change(same, v(3), {"Price": 3}, False, now=3.0)
    assert changed is not None and projection.is_pending(changed)
    back = projection.fold_change(changed, v(4), {"Price": 1}, False, now=4.0)
    assert back is not None and not projection.is_pending(back)


def test_requeue_makes_pending_and_forgets_the_sent_digest() -> None:
    held = projection.fold_change(None, v(1), {"Price": 1}, False, now=1.0)
    sent = projection.mark_sent(held, [1_000, 1])
    again = projection.requeue(sent, now=5.0)
    assert again is not None and again["p"] == 5.0 and again["h"] is None
    # Norce may not hold the value any more: the same value must go out again.
    same = projection.fold_change(again, v(2), {"Price": 1}, False, now=6.0)
    assert same is not None and projection.is_pending(same)
    assert projection.requeue(again, now=7.0) is None
    assert projection.requeue(None, now=7.0) is None


def test_values_round_trip_through_bytes() -> None:
    held = projection.fold_change(None, v(1), {"Price": 1.5, "Name": "å"}, False, now=1.0)
    assert held is not None
    assert projection.decode(projection.encode(held)) == held

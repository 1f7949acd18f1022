"""Issue 23 item 5: the full-import guard's arithmetic and its reference count."""

from __future__ import annotations

from agents.imports.full_guard import last_full_count, refusal
from agents.imports.jobs import JobRecord


def record(n: int, status: str, count: int, finished: float, mode: str = "full") -> JobRecord:
    return JobRecord(
        batch_id=f"b{n}",
        source="erp",
        kind="price",
        mode=mode,  # type: ignore[arg-type]
        item_count=count,
        status=status,
        finished_at=finished,
    )


def test_the_reference_is_the_newest_successful_full_import_of_the_pair() -> None:
    records = [
        record(1, "succeeded", 1000, 10.0),
        record(2, "succeeded", 900, 20.0),
        record(3, "failed", 5, 30.0),
        record(4, "succeeded", 7, 40.0, mode="delta"),
    ]
    assert last_full_count(records, "erp", "price") == 900
    assert last_full_count(records, "erp", "stock") is None


def test_a_file_that_would_drop_more_than_the_share_is_refused() -> None:
    reason = refusal(10, 1000, 0.1)
    assert reason is not None and "would deactivate 990 of the 1,000" in reason
    assert "--force" in reason
    assert refusal(900, 1000, 0.1) is None  # exactly the share: allowed
    assert refusal(899, 1000, 0.1) is not None
    assert refusal(1200, 1000, 0.1) is None  # growing is fine
    assert refusal(10, None, 0.1) is None  # no full import yet: nothing to compare
    assert refusal(0, 1000, 1.0) is None  # the guard off

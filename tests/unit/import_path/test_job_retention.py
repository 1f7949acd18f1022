"""The jobs ledger's retention (issue 23, item 13): finished records are pruned by age
and count, never one the tracker still acts on; the "poll soon" set stays bounded."""

from __future__ import annotations

from typing import Any

from agents.imports.jobs import POLL_SOON_MAX, POLL_SOON_TTL_S, JobRecord, Memory
from agents.imports.retention import to_prune

DAY = 86_400.0
NOW = 100 * DAY


def job(batch_id: str, age_days: float, **kw: Any) -> JobRecord:
    at = NOW - age_days * DAY
    values: dict[str, Any] = {
        "batch_id": batch_id,
        "source": "erp",
        "kind": "price",
        "mode": "delta",
        "status": "succeeded",
        "submitted_at": at,
        "last_event_at": at,
    }
    values.update(kw)
    return JobRecord(**values)


def test_old_finished_records_go_and_open_or_unsettled_ones_stay() -> None:
    records = [
        job("old-ok", 10),
        job("new-ok", 1),
        job("old-open", 10, status="queued", job_id=1),
        job("old-failed-unsettled", 10, status="failed"),
        job("old-failed-settled", 10, status="failed", settled=True),
        job("old-resent", 10, resubmitted=True),  # its late finish is not handled yet
        job("old-full", 20, mode="full", settled=True),
        job("newest-full", 9, mode="full", settled=True),  # kept: the pair's last full
    ]
    pruned = to_prune(records, NOW, retention_s=7 * DAY, max_records=10_000)
    assert pruned == ["old-full", "old-ok", "old-failed-settled"]


def test_past_the_count_the_oldest_finished_go_first() -> None:
    records = [job(f"b{i}", i / 100) for i in range(150)]  # all within the retention
    pruned = to_prune(records, NOW, retention_s=7 * DAY, max_records=100)
    assert len(pruned) == 50
    assert set(pruned) == {f"b{i}" for i in range(100, 150)}  # the oldest 50


def test_poll_soon_is_bounded_and_forgets_what_no_open_job_has() -> None:
    memory = Memory()
    for job_id in range(POLL_SOON_MAX + 500):
        memory.note_completed(job_id, now=float(job_id))
    assert len(memory.poll_soon) == POLL_SOON_MAX and 0 not in memory.poll_soon
    open_job = job("open", 0, status="queued", job_id=POLL_SOON_MAX + 1)
    memory.done = {("open", "overdue"), ("gone", "settle")}
    memory.prune([open_job], now=POLL_SOON_MAX + 500 + POLL_SOON_TTL_S)
    assert memory.poll_soon == {POLL_SOON_MAX + 1}
    assert set(memory.soon_at) == {POLL_SOON_MAX + 1}
    assert memory.done == {("open", "overdue")}

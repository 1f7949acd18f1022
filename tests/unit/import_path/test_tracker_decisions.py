"""The job tracker's decisions, one branch at a time (``agents.imports.decisions``)."""

from __future__ import annotations

from typing import Any

from agents.imports.decisions import (
    FlagOverdue,
    LateFinishResend,
    Limits,
    Memory,
    Poll,
    ResolveOrphan,
    SettleFailure,
    Supersede,
    decide,
)
from agents.imports.jobs import JobRecord

LIMITS = Limits(
    lead_time_limit_s=100.0,
    orphan_grace_s=10.0,
    resubmit_overdue=True,
    poll_min_s=1.0,
    poll_max_s=30.0,
)


def job(batch_id: str = "b1", **fields: Any) -> JobRecord:
    values: dict[str, Any] = {
        "batch_id": batch_id,
        "source": "erp",
        "kind": "price",
        "mode": "delta",
        "submitted_at": 1000.0,
        "last_event_at": 1000.0,
    }
    values.update(fields)
    return JobRecord(**values)


def run(record: JobRecord, now: float, *others: JobRecord, **kw: Any) -> list[Any]:
    memory = kw.pop("memory", Memory())
    limits = kw.pop("limits", LIMITS)
    return decide(record, [record, *others], now, limits, memory)


def test_an_intent_within_its_grace_is_left_alone_then_checked_against_norce() -> None:
    intent = job(status="intent", last_event_at=1000.0)
    assert run(intent, 1005.0) == []
    assert run(intent, 1011.0) == [ResolveOrphan(ask_norce=True)]
    # Past the lead-time limit no unfinished Norce job can still be it.
    assert run(intent, 1101.0) == [ResolveOrphan(ask_norce=False)]


def test_an_open_job_is_polled_when_due_or_announced_with_backoff() -> None:
    queued = job(status="queued", job_id=7, polls=3, next_poll_at=1050.0)
    assert run(queued, 1010.0) == []
    assert run(queued, 1050.0) == [Poll(next_poll_at=1058.0)]  # 1 s * 2**3
    assert run(queued, 1010.0, memory=Memory(poll_soon={7})) == [Poll(next_poll_at=1018.0)]
    many = job(status="queued", job_id=7, polls=20, next_poll_at=None)
    assert run(many, 1010.0) == [Poll(next_poll_at=1040.0)]  # capped at poll_max_s


def test_an_intent_without_job_id_is_never_polled() -> None:
    assert run(job(status="queued", job_id=None), 1010.0) == []


def test_an_overdue_job_is_polled_and_flagged_once() -> None:
    slow = job(status="validating", job_id=7, next_poll_at=2000.0)
    assert run(slow, 1101.0) == [FlagOverdue(requeue=True)]
    due = job(status="validating", job_id=7, next_poll_at=1100.0, polls=0)
    assert run(due, 1101.0) == [Poll(next_poll_at=1102.0), FlagOverdue(requeue=True)]
    done = Memory(done={("b1", "overdue")})
    assert run(slow, 1101.0, memory=done) == []  # the mirror lags our own event
    assert run(slow.model_copy(update={"overdue": True}), 1101.0) == []


def test_overdue_keys_are_requeued_only_for_deltas_under_the_resubmit_policy() -> None:
    full = job(status="queued", job_id=7, mode="full", next_poll_at=2000.0)
    assert run(full, 1101.0) == [FlagOverdue(requeue=False)]
    flag_only = Limits(**{**LIMITS.__dict__, "resubmit_overdue": False})
    slow = job(status="queued", job_id=7, next_poll_at=2000.0)
    assert run(slow, 1101.0, limits=flag_only) == [FlagOverdue(requeue=False)]


def test_overdue_then_late_finish_resends_the_keys_once() -> None:
    # Flagged overdue and re-sent (Requeued reason overdue), then Norce still ran it.
    late = job(status="succeeded", job_id=7, overdue=True, resubmitted=True)
    assert run(late, 1500.0) == [LateFinishResend()]
    assert run(late, 1500.0, memory=Memory(done={("b1", "late")})) == []
    assert run(late.model_copy(update={"late_resend": True}), 1500.0) == []
    # Overdue but never re-sent (policy flag): finishing late needs nothing.
    assert run(job(status="succeeded", job_id=7, overdue=True), 1500.0) == []


def test_a_successful_full_import_supersedes_earlier_failures_and_settles() -> None:
    full = job("full", status="succeeded", mode="full", job_id=9, submitted_at=2000.0)
    failed = job("d1", status="failed", job_id=7, submitted_at=1000.0)
    settled = job("d2", status="failed", job_id=8, submitted_at=1100.0, settled=True)
    later = job("d3", status="failed", job_id=10, submitted_at=2100.0)
    other_kind = job("d4", status="failed", kind="stock", submitted_at=1000.0)
    actions = run(full, 2500.0, failed, settled, later, other_kind)
    assert actions == [Supersede(batch_ids=("d1",), by="full", settle_by=True)]
    assert run(full, 2500.0) == [Supersede(batch_ids=(), by="full", settle_by=True)]
    assert run(full.model_copy(update={"settled": True}), 2500.0, failed) == []


def test_a_failure_waits_for_a_later_open_full_import_and_is_superseded_by_its_success() -> None:
    failed = job("d1", status="failed", job_id=7, submitted_at=1000.0)
    running = job("full", status="queued", mode="full", submitted_at=2000.0)
    assert run(failed, 2500.0, running) == []
    succeeded = running.model_copy(update={"status": "succeeded"})
    assert run(failed, 2500.0, succeeded) == [
        Supersede(batch_ids=("d1",), by="full", settle_by=False)
    ]
    earlier_full = job("f0", status="succeeded", mode="full", submitted_at=900.0)
    assert run(failed, 2500.0, earlier_full) == [SettleFailure(requeue=True)]


def test_a_failure_is_settled_once_and_only_a_failed_delta_requeues() -> None:
    failed = job(status="failed", job_id=7)
    assert run(failed, 1010.0) == [SettleFailure(requeue=True)]
    assert run(failed, 1010.0, memory=Memory(done={("b1", "settle")})) == []
    invalid = job(status="validation_failed", job_id=7)
    assert run(invalid, 1010.0) == [SettleFailure(requeue=False)]
    full = job(status="failed", job_id=7, mode="full")
    assert run(full, 1010.0) == [SettleFailure(requeue=False)]
    assert run(failed.model_copy(update={"settled": True}), 1010.0) == []


def test_finished_jobs_need_nothing() -> None:
    for status in ("succeeded", "submit_failed", "lost"):
        assert run(job(status=status, job_id=7), 5000.0) == [], status

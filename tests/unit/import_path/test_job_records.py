"""The jobs ledger's fold: statuses, lead time, finality, and what blocks submissions."""

from __future__ import annotations

from typing import Any

import orjson

from agents.imports import jobs
from agents.imports.jobs import JobRecord
from streams.messages import JobCompleted, JobEvent, job_events_message


def event(body: dict[str, Any]) -> JobEvent:
    """The typed event of batch b1 from its JSON form (the wire shape stays readable)."""
    message = job_events_message({"batch_id": "b1", **body})
    assert not isinstance(message, JobCompleted)
    return message


def apply_job_event(record: JobRecord | None, body: dict[str, Any]) -> JobRecord | None:
    return jobs.apply_job_event(record, event(body))


def fold(*events: dict[str, Any]) -> JobRecord | None:
    record = None
    for body in events:
        record = apply_job_event(record, body)
    return record


INTENT = {"type": "intent", "source": "erp", "kind": "price", "mode": "delta", "at": 100.0}


def test_a_job_from_intent_to_success() -> None:
    record = fold(
        INTENT,
        {"type": "posted", "job_id": 7, "item_count": 3, "at": 101.0},
        {"type": "status", "status_id": 6, "at": 102.0},
        {"type": "status", "status_id": 5, "at": 103.0},
        {"type": "status", "status_id": 2, "inserts": 3, "updates": 0, "fail": 0, "at": 104.5},
    )
    assert record is not None
    assert (record.job_id, record.status, record.item_count) == (7, "succeeded", 3)
    assert record.started_at == 103.0 and record.finished_at == 104.5
    assert record.lead_time_s == 4.5
    assert record.is_final and not record.blocks_submissions and not record.needs_settling


def test_open_jobs_block_until_final_or_overdue() -> None:
    queued = fold(INTENT, {"type": "posted", "job_id": 7, "at": 101.0})
    assert queued is not None and queued.blocks_submissions
    assert fold(INTENT).blocks_submissions  # an intent without outcome blocks too
    overdue = apply_job_event(queued, {"type": "overdue", "reason": "slow"})
    assert overdue is not None and not overdue.blocks_submissions and overdue.errors == ["slow"]


def test_a_final_status_is_never_reopened_by_a_late_poll() -> None:
    failed = fold(INTENT, {"type": "posted", "job_id": 7}, {"type": "status", "status_id": 3})
    late = apply_job_event(failed, {"type": "status", "status_id": 6})
    assert late is not None and late.status == "failed" and late.needs_settling


def test_settled_and_superseded_failures_need_nothing_more() -> None:
    failed = fold(INTENT, {"type": "posted", "job_id": 7}, {"type": "status", "status_id": 4})
    assert failed is not None and failed.status == "validation_failed" and failed.needs_settling
    superseded = apply_job_event(failed, {"type": "superseded", "by": "full"})
    assert superseded is not None and superseded.superseded and not superseded.needs_settling


def test_events_for_an_unknown_batch_are_ignored_and_intents_are_idempotent() -> None:
    assert fold({"type": "status", "status_id": 2}) is None
    once = fold(INTENT, {"type": "posted", "job_id": 7})
    assert apply_job_event(once, {**INTENT, "batch_id": "b1"}) == once


def test_status_names_come_from_the_norce_contract() -> None:
    failed = fold(INTENT, {"type": "posted", "job_id": 7}, {"type": "status", "status_id": 4})
    assert failed is not None and failed.status == "validation_failed" and failed.is_final
    odd = fold(INTENT, {"type": "posted", "job_id": 7}, {"type": "status", "status_id": 99})
    assert odd is not None and odd.status == "status-99" and not odd.is_final


def test_job_events_keep_their_json_shape() -> None:
    body = {"type": "requeued", "reason": "overdue", "keys": 3, "batch_id": "b1", "at": 5.0}
    message = event(body)
    assert orjson.loads(message.to_bytes()) == body
    requeued = jobs.apply_job_event(fold(INTENT), message)
    assert requeued is not None and requeued.resubmitted

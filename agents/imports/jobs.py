"""The jobs ledger: one record per submission (delta or full import), keyed by batch id,
built by folding job events (``streams.messages.JobEvent``) in order. Pure functions; the
tracker agent applies them.

Events: ``intent`` (recorded before the POST), ``posted`` (JobId known),
``submit_failed`` (the POST failed after retries: the keys stay pending), ``status`` (a
``Job/Get`` answer), ``log`` (errors from ``Job/GetLog``), ``settled`` (failures handled:
keys re-queued, rejected rows dead-lettered), ``superseded``, ``overdue``, ``requeued``,
``late_finish``, ``lost`` (an intent whose POST outcome is unknown and no unfinished job
can be behind it), ``progress`` (rows streamed by a full import).
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from norce.jobs import RUNNING, JobStatus, status_label
from streams.messages import (
    Intent,
    JobEvent,
    JobLog,
    LateFinish,
    Lost,
    Mode,
    Overdue,
    Posted,
    Progress,
    Requeued,
    Settled,
    Status,
    SubmitFailed,
    Superseded,
)

# Norce's final statuses (by their labels), and ours: the POST failed, or its outcome is lost.
FAILED = frozenset(s.label for s in JobStatus if s.is_final and not s.is_success)
FINAL = frozenset(s.label for s in JobStatus if s.is_final) | {"submit_failed", "lost"}
MAX_ERRORS = 50


class JobRecord(BaseModel):
    batch_id: str
    source: str
    kind: str
    mode: Mode
    item_count: int = 0
    batch_ref: list[int] | None = None  # [partition, offset] of the batch's keys
    request_id: str | None = None  # set by an on-demand full import
    job_id: int | None = None
    status: str = "intent"
    status_id: int | None = None
    submitted_at: float = Field(default_factory=time.time)
    posted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    lead_time_s: float | None = None
    inserts: int | None = None
    updates: int | None = None
    fail: int | None = None
    validation_failures: int = 0
    polls: int = 0
    next_poll_at: float | None = None
    errors: list[str] = Field(default_factory=list)
    overdue: bool = False
    # Its keys went out again because it was overdue (overdue_policy=resubmit) ...
    resubmitted: bool = False
    # ... and once it still finished after that, they went out once more (late_finish).
    late_resend: bool = False
    settled: bool = False
    superseded: bool = False
    rows_streamed: int = 0
    rejected_rows: list[int] = Field(default_factory=list)  # row indexes Norce refused
    last_event_at: float = Field(default_factory=time.time)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def blocks_submissions(self) -> bool:
        """True while this job may still write to Norce: a newer job for the same keys
        must wait, or Norce could apply the older values last."""
        return not self.is_final and not self.overdue

    @property
    def needs_settling(self) -> bool:
        return self.status in FAILED and not self.settled and not self.superseded


def apply_job_event(record: JobRecord | None, event: JobEvent) -> JobRecord | None:
    """Fold one event into the record (``None`` when there is no record to update)."""
    now = event.at
    if isinstance(event, Intent):
        if record is not None:
            return record  # redelivered intent
        return JobRecord(
            batch_id=event.batch_id,
            source=event.source,
            kind=event.kind,
            mode=event.mode,
            item_count=event.item_count,
            batch_ref=event.batch_ref,
            request_id=event.request_id,
            submitted_at=now,
        )
    if record is None:
        return None
    r = record.model_copy(deep=True)
    r.last_event_at = now
    match event:
        case Posted():
            r.job_id = event.job_id
            r.posted_at = now
            if event.item_count is not None:
                r.item_count = event.item_count
            r.validation_failures = event.validation_failures
            r.rejected_rows = list(event.rejected_rows)
            if r.status in ("intent", "lost"):
                # "lost" meant "outcome unknown": a JobId found later (a full import
                # adopting the job Norce has) reopens the record, tracked like any other.
                r.status = "queued"
                r.finished_at = None
            r.next_poll_at = now
        case SubmitFailed():
            r.status = "submit_failed"
            r.finished_at = now
            _add_error(r, event.reason)
        case Status():
            if r.is_final:
                return r  # a late poll never reopens a finished job
            r.status_id = event.status_id
            r.status = status_label(event.status_id)
            r.polls += 1
            r.next_poll_at = event.next_poll_at
            for field in ("inserts", "updates", "fail"):
                if (value := getattr(event, field)) is not None:
                    setattr(r, field, value)
            if (r.started_at is None and event.status_id in RUNNING) or event.started_at:
                r.started_at = event.started_at or now
            if r.is_final:
                r.finished_at = event.finished_at or now
                r.lead_time_s = round(r.finished_at - r.submitted_at, 3)
        case JobLog():
            for message in event.errors:
                _add_error(r, message)
        case Settled():
            r.settled = True
        case Superseded():
            r.superseded = True
            r.settled = True
        case Overdue():
            r.overdue = True
            _add_error(r, event.reason)
        case Requeued():
            if event.reason == "overdue":
                r.resubmitted = True
        case LateFinish():
            r.late_resend = True
            _add_error(
                r,
                "finished after its keys were re-sent (overdue); they were sent again from "
                "their current state so Norce ends at the newest value",
            )
        case Lost():
            r.status = "lost"
            r.finished_at = now
            _add_error(r, event.reason)
        case Progress():
            r.rows_streamed = event.rows
            r.item_count = max(r.item_count, event.total)
    return r


def _add_error(record: JobRecord, message: str) -> None:
    if len(record.errors) < MAX_ERRORS:
        record.errors.append(message)

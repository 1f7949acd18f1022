"""The jobs ledger: one record per submission (delta or full import), keyed by batch id,
built by folding job events in order. Pure functions; the tracker agent applies them.

Events (``type``): ``intent`` (recorded before the POST), ``posted`` (JobId known),
``submit_failed`` (the POST failed after retries: the keys stay pending), ``status`` (a
``Job/Get`` answer), ``log`` (errors from ``Job/GetLog``), ``settled`` (failures handled:
keys re-queued, rejected rows dead-lettered), ``superseded``, ``overdue``, ``lost`` (an
intent whose POST outcome is unknown and no unfinished job can be behind it),
``progress`` (rows streamed by a full import).
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

Mode = Literal["delta", "full"]

# Norce's StatusId -> our status names.
NORCE_STATUS = {
    1: "initialized",
    2: "succeeded",
    3: "failed",
    4: "validation_failed",
    5: "validating",
    6: "queued",
}
FINAL = frozenset({"succeeded", "failed", "validation_failed", "submit_failed", "lost"})
FAILED = frozenset({"failed", "validation_failed"})
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


def apply_job_event(record: JobRecord | None, event: dict[str, Any]) -> JobRecord | None:
    """Fold one event into the record (``None`` when there is no record to update)."""
    kind = event["type"]
    now = float(event.get("at") or time.time())
    if kind == "intent":
        if record is not None:
            return record  # redelivered intent
        return JobRecord(
            batch_id=event["batch_id"],
            source=event["source"],
            kind=event["kind"],
            mode=event["mode"],
            item_count=event.get("item_count", 0),
            batch_ref=event.get("batch_ref"),
            request_id=event.get("request_id"),
            submitted_at=now,
        )
    if record is None:
        return None
    r = record.model_copy(deep=True)
    r.last_event_at = now
    if kind == "posted":
        r.job_id = int(event["job_id"])
        r.posted_at = now
        r.item_count = event.get("item_count", r.item_count)
        r.validation_failures = int(event.get("validation_failures", 0))
        r.rejected_rows = list(event.get("rejected_rows", []))
        if r.status in ("intent", "lost"):
            # "lost" meant "outcome unknown": a JobId found later (a full import adopting
            # the job Norce has) reopens the record, and it is tracked like any other.
            r.status = "queued"
            r.finished_at = None
        r.next_poll_at = now
    elif kind == "submit_failed":
        r.status = "submit_failed"
        r.finished_at = now
        _add_error(r, event.get("reason", "submission failed"))
    elif kind == "status":
        if r.is_final:
            return r  # a late poll never reopens a finished job
        status_id = int(event["status_id"])
        r.status_id = status_id
        r.status = NORCE_STATUS.get(status_id, f"status-{status_id}")
        r.polls += 1
        r.next_poll_at = event.get("next_poll_at")
        for field in ("inserts", "updates", "fail"):
            if event.get(field) is not None:
                setattr(r, field, int(event[field]))
        if (r.started_at is None and status_id in (1, 5)) or event.get("started_at"):
            r.started_at = event.get("started_at") or now
        if r.is_final:
            r.finished_at = event.get("finished_at") or now
            r.lead_time_s = round(r.finished_at - r.submitted_at, 3)
    elif kind == "log":
        for message in event.get("errors", []):
            _add_error(r, message)
    elif kind == "settled":
        r.settled = True
    elif kind == "superseded":
        r.superseded = True
        r.settled = True
    elif kind == "overdue":
        r.overdue = True
        _add_error(r, event.get("reason", "lead time limit exceeded"))
    elif kind == "requeued":
        if event.get("reason") == "overdue":
            r.resubmitted = True
    elif kind == "late_finish":
        r.late_resend = True
        _add_error(
            r,
            "finished after its keys were re-sent (overdue); they were sent again from "
            "their current state so Norce ends at the newest value",
        )
    elif kind == "lost":
        r.status = "lost"
        r.finished_at = now
        _add_error(r, event.get("reason", "outcome of the POST unknown; keys stayed pending"))
    elif kind == "progress":
        r.rows_streamed = int(event["rows"])
        r.item_count = max(r.item_count, int(event.get("total", 0)))
    return r


def _add_error(record: JobRecord, message: str) -> None:
    if len(record.errors) < MAX_ERRORS:
        record.errors.append(message)


_ROW_INDEX = re.compile(r"\[(\d+)\]")


def rejected_rows(messages: list[str]) -> dict[int, str]:
    """Row index -> reason from a ValidationSummary (``Item [3] (PartNo 'A'): ...``)."""
    rows: dict[int, str] = {}
    for message in messages:
        match = _ROW_INDEX.search(message)
        if match:
            rows.setdefault(int(match.group(1)), message)
    return rows

"""The jobs ledger: one record per submission (delta or full import), keyed by batch id,
built by folding job events (``streams.messages.JobEvent``) in order. Pure functions; the
tracker agent applies them.

Events: ``intent`` (recorded before the POST), ``posted`` (JobId known),
``submit_failed`` (the POST failed after retries: the keys stay pending), ``status`` (a
``Job/Get`` answer), ``log`` (errors from ``Job/GetLog``), ``settled`` (failures handled:
keys re-queued, rejected rows dead-lettered), ``superseded``, ``overdue``, ``requeued``,
``late_finish``, ``lost`` (an intent whose POST outcome is unknown and no unfinished job
can be behind it), ``progress`` (rows streamed by a full import).

The tracker's decisions are pure too: ``decide(record, records, now, limits, memory)``
returns the actions for this tick (none, one, or a poll and an overdue flag together);
``agents.imports.tracker`` executes them and notes each one done in ``memory``. Every
action but ``Poll`` runs once per leader: the ledger mirror shows the leader's own events
a moment later, and a tick in between must not settle or re-queue the same job again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

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
from streams.settings import Settings

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
    held_back: int = 0  # full import: rows left out because a reference is not in Norce
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
            r.held_back = event.held_back
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


# --- the tracker's decisions ---------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    lead_time_limit_s: float
    orphan_grace_s: float
    resubmit_overdue: bool  # overdue_policy == "resubmit"
    poll_min_s: float
    poll_max_s: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            lead_time_limit_s=settings.job_lead_time_limit_s,
            orphan_grace_s=settings.orphan_grace_s,
            resubmit_overdue=settings.overdue_policy == "resubmit",
            poll_min_s=settings.job_poll_min_s,
            poll_max_s=settings.job_poll_max_s,
        )

    def poll_delay(self, polls: int) -> float:
        """Exponential backoff between ``Job/Get`` polls of one job."""
        return min(self.poll_min_s * 2 ** min(polls, 8), self.poll_max_s)


# A JobCompletedEvent's JobId is kept this long even when no open job of the ledger has
# it (its ``posted`` may not be folded yet); at most POLL_SOON_MAX of them.
POLL_SOON_TTL_S = 600.0
POLL_SOON_MAX = 10_000


@dataclass
class Memory:
    """What this leader knows beyond the ledger. Bounded: ``prune`` keeps only what
    concerns records still in the ledger (and recent JobCompletedEvents)."""

    done: set[tuple[str, str]] = field(default_factory=set)  # (batch id, Action.once)
    poll_soon: set[int] = field(default_factory=set)  # JobIds a JobCompletedEvent named
    soon_at: dict[int, float] = field(default_factory=dict)  # JobId -> when it was named

    def note_completed(self, job_id: int, now: float | None = None) -> None:
        """A JobCompletedEvent named ``job_id``: poll it at the next tick. Every webhook
        of the tenant arrives here, also for jobs this ledger never tracks."""
        self.poll_soon.add(job_id)
        self.soon_at[job_id] = time.time() if now is None else now
        if len(self.poll_soon) > POLL_SOON_MAX:
            oldest = sorted(self.soon_at, key=self.soon_at.__getitem__)
            for stale in oldest[: len(oldest) - POLL_SOON_MAX]:
                self.poll_soon.discard(stale)
                self.soon_at.pop(stale, None)

    def polled(self, job_id: int) -> None:
        self.poll_soon.discard(job_id)
        self.soon_at.pop(job_id, None)

    def prune(self, records: Sequence[JobRecord], now: float) -> None:
        batch_ids = {r.batch_id for r in records}
        open_jobs = {r.job_id for r in records if r.job_id is not None and not r.is_final}
        self.done = {d for d in self.done if d[0] in batch_ids}
        self.poll_soon = {
            j
            for j in self.poll_soon
            if j in open_jobs or now - self.soon_at.get(j, now) < POLL_SOON_TTL_S
        }
        self.soon_at = {j: t for j, t in self.soon_at.items() if j in self.poll_soon}


@dataclass(frozen=True)
class Poll:
    """Ask ``Job/Get``; the next poll is due at ``next_poll_at`` unless Norce says done."""

    next_poll_at: float
    once: None = None


@dataclass(frozen=True)
class FlagOverdue:
    """Past the lead-time limit: flag it (it stops blocking new jobs of its keys) and,
    for a delta under ``overdue_policy=resubmit``, re-queue its keys."""

    requeue: bool
    once: Literal["overdue"] = "overdue"


@dataclass(frozen=True)
class ResolveOrphan:
    """An intent without outcome past its grace: its worker died around the POST. Close
    it as lost, once no unfinished Norce job can be it (``ask_norce``); past the lead-time
    limit no job can still hold it, so Norce is not asked."""

    ask_norce: bool
    once: Literal["lost"] = "lost"


@dataclass(frozen=True)
class Supersede:
    """Mark the failed jobs ``batch_ids`` superseded by the successful full import ``by``;
    ``settle_by``: ``by`` is the record decided on, and is settled with it."""

    batch_ids: tuple[str, ...]
    by: str
    settle_by: bool
    once: Literal["supersede"] = "supersede"


@dataclass(frozen=True)
class SettleFailure:
    """A failed job no later full import covers: record Norce's log errors, re-queue its
    keys (a delta that failed; a validation failure would only fail again), settle it."""

    requeue: bool
    once: Literal["settle"] = "settle"


@dataclass(frozen=True)
class LateFinishResend:
    """Overdue, its keys re-sent, and Norce still ran it afterwards: it may have written
    older values over the re-sent ones, so its keys go out once more from current state."""

    once: Literal["late"] = "late"


Action = Poll | FlagOverdue | ResolveOrphan | Supersede | SettleFailure | LateFinishResend


def decide(
    record: JobRecord,
    records: Sequence[JobRecord],
    now: float,
    limits: Limits,
    memory: Memory,
) -> list[Action]:
    """The actions for ``record`` now, minus the once-actions this leader already did."""
    actions = _candidates(record, records, now, limits, memory)
    return [a for a in actions if a.once is None or (record.batch_id, a.once) not in memory.done]


def _candidates(
    record: JobRecord, records: Sequence[JobRecord], now: float, limits: Limits, memory: Memory
) -> list[Action]:
    overdue = now - record.submitted_at > limits.lead_time_limit_s
    if record.status == "intent":
        if now - record.last_event_at < limits.orphan_grace_s:
            return []
        return [ResolveOrphan(ask_norce=not overdue)]
    if not record.is_final:
        actions: list[Action] = []
        due = record.next_poll_at is None or record.next_poll_at <= now
        if record.job_id is not None and (due or record.job_id in memory.poll_soon):
            actions.append(Poll(next_poll_at=now + limits.poll_delay(record.polls)))
        if overdue and not record.overdue:
            resubmit = limits.resubmit_overdue and record.mode == "delta"
            actions.append(FlagOverdue(requeue=resubmit))
        return actions
    if (
        record.mode == "delta"
        and record.status == "succeeded"
        and record.resubmitted
        and not record.late_resend
    ):
        return [LateFinishResend()]
    if record.status == "succeeded" and record.mode == "full" and not record.settled:
        earlier = tuple(r.batch_id for r in _earlier_failures(record, records))
        return [Supersede(batch_ids=earlier, by=record.batch_id, settle_by=True)]
    if record.needs_settling:
        later = _later_full_imports(record, records)
        succeeded = [r for r in later if r.status == "succeeded"]
        if succeeded:
            return [
                Supersede(batch_ids=(record.batch_id,), by=succeeded[0].batch_id, settle_by=False)
            ]
        if all(r.is_final for r in later):
            # No later full import is on its way: retry the failed job's keys.
            return [SettleFailure(requeue=record.mode == "delta" and record.status == "failed")]
    return []


def _later_full_imports(record: JobRecord, records: Sequence[JobRecord]) -> list[JobRecord]:
    """Full imports of the failed job's kind submitted after it. While one is open the
    failed job waits; once one succeeded, the failed job is superseded, never retried."""
    return [
        r
        for r in records
        if r.mode == "full"
        and r.source == record.source
        and r.kind == record.kind
        and r.submitted_at > record.submitted_at
    ]


def _earlier_failures(full: JobRecord, records: Sequence[JobRecord]) -> list[JobRecord]:
    """Failed, unsettled jobs of the full import's kind submitted before it."""
    return [
        r
        for r in records
        if r.source == full.source
        and r.kind == full.kind
        and r.status in FAILED
        and r.submitted_at < full.submitted_at
        and not r.settled
    ]

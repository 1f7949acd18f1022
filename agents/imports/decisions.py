"""What the job tracker does about one ledger record, decided without I/O.

``decide(record, records, now, limits, memory)`` returns the actions for this tick (none,
one, or a poll and an overdue flag together); ``agents.imports.tracker`` executes them
and notes each one done in ``memory``. Every action but ``Poll`` runs once per leader
(``once``): the ledger mirror shows the leader's own events a moment later, and a tick in
between must not settle or re-queue the same job again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from agents.imports.jobs import FAILED, JobRecord
from streams.settings import Settings


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


@dataclass
class Memory:
    """What this leader knows beyond the ledger."""

    done: set[tuple[str, str]] = field(default_factory=set)  # (batch id, Action.once)
    poll_soon: set[int] = field(default_factory=set)  # JobIds a JobCompletedEvent named


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

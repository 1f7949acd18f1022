"""The messages of the internal topics, one typed record each (JSON on the wire).

- ``<app>-job-events``: ``JobEvent`` (one class per ``type``), written by delta, full
  import and the tracker, folded by the tracker (and followed by ``full-import``); and
  ``JobCompleted``, keyed ``job:<JobId>``, from the export intake to the tracker.
- ``<app>-batches``: ``BatchIntent``, written by delta, read back by the tracker to
  re-queue a batch's keys.
- ``<app>-commands``: ``FullImportRequest``, from the schedule or ``full-import`` to the
  full import agent.
- ``<app>-commands`` also carries ``ReconcileRequest`` (schedule, CLI, ``POST /reconcile``).
- ``<app>-reconcile``: ``ReconcileProgress`` (keyed ``progress:<request id>``, a tombstone
  once the result is out) and
  ``ReconcileResult`` (keyed ``source|kind``: compaction keeps the last one per pair).
- ``<app>-import-commands.<input topic>``: ``RequeueCommand``, tracker or reconcile ->
  projector.
- the dead-letter topic: ``streams.records.DeadLetter``, from every stage to the ops views.

The field names are the ones the dict messages had, so records already on a topic read
back. ``at`` is when the event happened (epoch seconds); the ledger's times come from it.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from streams.records import Record

Mode = Literal["delta", "full"]


class _JobEvent(Record):
    batch_id: str
    at: float = Field(default_factory=time.time)


class Intent(_JobEvent):
    """Recorded (and acknowledged) before the POST: the crash-safe order starts here."""

    type: Literal["intent"] = "intent"
    source: str
    kind: str
    mode: Mode
    item_count: int = 0
    batch_ref: list[int] | None = None  # [partition, offset] of the BatchIntent
    request_id: str | None = None  # the FullImportRequest it answers


class Posted(_JobEvent):
    type: Literal["posted"] = "posted"
    job_id: int
    item_count: int | None = None
    validation_failures: int = 0
    rejected_rows: list[int] = Field(default_factory=list)
    held_back: int = 0  # full import: rows left out, a reference not in Norce


class SubmitFailed(_JobEvent):
    type: Literal["submit_failed"] = "submit_failed"
    reason: str = "submission failed"


class Status(_JobEvent):
    """A ``Job/Get`` answer."""

    type: Literal["status"] = "status"
    status_id: int
    inserts: int | None = None
    updates: int | None = None
    fail: int | None = None
    next_poll_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


class JobLog(_JobEvent):
    """Errors from ``Job/GetLog`` of a failed job."""

    type: Literal["log"] = "log"
    errors: list[str] = Field(default_factory=list)


class Settled(_JobEvent):
    type: Literal["settled"] = "settled"


class Superseded(_JobEvent):
    type: Literal["superseded"] = "superseded"
    by: str | None = None  # batch id of the full import that succeeded later


class Overdue(_JobEvent):
    type: Literal["overdue"] = "overdue"
    reason: str = "lead time limit exceeded"


RequeueReason = Literal["failed", "overdue", "late_finish", "reconcile"]


class Requeued(_JobEvent):
    type: Literal["requeued"] = "requeued"
    reason: RequeueReason
    keys: int = 0


class LateFinish(_JobEvent):
    type: Literal["late_finish"] = "late_finish"


class Lost(_JobEvent):
    type: Literal["lost"] = "lost"
    reason: str = "outcome of the POST unknown; keys stayed pending"


class Progress(_JobEvent):
    type: Literal["progress"] = "progress"
    rows: int
    total: int = 0


class Pruned(_JobEvent):
    """The record is past the ledger's retention: the tracker deletes it (a tombstone in
    the jobs changelog)."""

    type: Literal["pruned"] = "pruned"


class JobCompleted(Record):
    """A ``JobCompletedEvent`` webhook, routed by the export intake to the job tracker."""

    type: Literal["job_completed"] = "job_completed"
    job_id: int
    status_id: int
    received_at: float

    @property
    def key(self) -> str:
        return f"job:{self.job_id}"


JobEvent = Annotated[
    Intent
    | Posted
    | SubmitFailed
    | Status
    | JobLog
    | Settled
    | Superseded
    | Overdue
    | Requeued
    | LateFinish
    | Lost
    | Progress
    | Pruned,
    Field(discriminator="type"),
]
JobEventsMessage = Annotated[JobEvent | JobCompleted, Field(discriminator="type")]
_job_events: TypeAdapter[Any] = TypeAdapter(JobEventsMessage)


def job_events_message(value: bytes | str | dict[str, Any]) -> JobEvent | JobCompleted:
    """A message of the job events topic, from its JSON or its decoded dict.

    Raises ``pydantic.ValidationError`` (a ``ValueError``) for anything else."""
    if isinstance(value, dict):
        return _job_events.validate_python(value)  # type: ignore[no-any-return]
    return _job_events.validate_json(value)  # type: ignore[no-any-return]


class BatchIntent(Record):
    """A delta batch's keys, versions and input partitions, index by index; the ledger's
    ``Intent.batch_ref`` points here, so a failed job's keys can be re-queued."""

    batch_id: str
    topic: str  # the input topic the keys' state belongs to
    keys: list[str]
    versions: list[list[int]]
    partitions: list[int]


class FullImportRequest(Record):
    type: Literal["full_import"] = "full_import"
    source: str
    kind: str
    request_id: str
    by: str  # "schedule" or "cli"
    # Send even when the file would deactivate more than full_import_max_drop_share.
    force: bool = False


class RequeueCommand(Record):
    """Put one key (the message key) back in pending, from its current state."""

    type: Literal["requeue"] = "requeue"
    reason: RequeueReason
    batch_id: str


class ReconcileRequest(Record):
    type: Literal["reconcile"] = "reconcile"
    source: str
    kind: str
    request_id: str
    by: str  # "schedule", "cli" or "http"
    repair: bool = False


# What the single-partition commands topic carries, told apart by ``type`` (a record
# without one, written before reconcile shared the topic, is a full import request).
Command = FullImportRequest | ReconcileRequest


def parse_command(value: Any) -> Command:
    """The typed command of a commands-topic value; raises ``ValidationError``."""
    if isinstance(value, dict) and value.get("type") == "reconcile":
        return ReconcileRequest.model_validate(value)
    return FullImportRequest.model_validate(value)


class ReconcileProgress(Record):
    type: Literal["reconcile_progress"] = "reconcile_progress"
    request_id: str
    source: str
    kind: str
    phase: str  # "state" (changelog records read) or "norce" (Query rows compared)
    done: int
    total: int


class ReconcileResult(Record):
    """The last reconcile of a pair: counts per drift class (``agents.reconcile.rules``)."""

    type: Literal["reconcile_result"] = "reconcile_result"
    request_id: str
    source: str
    kind: str
    by: str
    repair: bool = False
    status: Literal["ok", "failed", "unsupported"] = "ok"
    error: str | None = None
    started_at: float
    duration_s: float = 0.0
    state_items: int = 0
    norce_items: int = 0
    matching: int = 0
    different: int = 0
    unwritable: int = 0
    pending: int = 0
    missing: int = 0
    waiting_reference: int = 0  # missing, held back: a SKU or price list is not in Norce
    absent: int = 0
    would_deactivate: int = 0
    absent_inactive: int = 0
    repaired: int = 0
    different_by_field: dict[str, int] = Field(default_factory=dict)
    unwritable_by_field: dict[str, int] = Field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    # Owned fields the comparison leaves out, with why (e.g. culture lists).
    not_compared: dict[str, str] = Field(default_factory=dict)

    @property
    def drift(self) -> int:
        return self.different + self.missing + self.absent + self.unwritable


ReconcileMessage = Annotated[ReconcileProgress | ReconcileResult, Field(discriminator="type")]
_reconcile: TypeAdapter[Any] = TypeAdapter(ReconcileMessage)


def reconcile_message(value: bytes | str) -> ReconcileProgress | ReconcileResult:
    """A message of the reconcile topic; ``pydantic.ValidationError`` for anything else."""
    return _reconcile.validate_json(value)  # type: ignore[no-any-return]

"""Connect's answers: the JobResponse of an import, and the Job / JobLog it refers to."""

from __future__ import annotations

import re
from datetime import datetime
from enum import IntEnum
from typing import Any

from pydantic import Field, field_validator

from norce.models import NorceModel


class JobStatus(IntEnum):
    INITIALIZED = 1
    SUCCEEDED = 2
    FAILED = 3
    VALIDATION_FAILED = 4
    VALIDATING = 5
    QUEUED = 6  # throttled: waiting for a Norce worker

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @property
    def is_success(self) -> bool:
        return self is JobStatus.SUCCEEDED

    @property
    def label(self) -> str:
        """The status as the jobs ledger and the ops views name it: ``validation_failed``."""
        return self.name.lower()


_FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.VALIDATION_FAILED})
# Norce has started on the job: it is past the queue.
RUNNING = frozenset({JobStatus.INITIALIZED, JobStatus.VALIDATING})


def status_label(status_id: int) -> str:
    """``JobStatus(status_id).label``; ``status-<n>`` for an id this client does not know."""
    try:
        return JobStatus(status_id).label
    except ValueError:
        return f"status-{status_id}"


class LogSeverity(IntEnum):
    INFORMATION = 1
    WARNING = 2
    ERROR = 3


_ROW_INDEX = re.compile(r"\[(\d+)\]")


class ValidationSummary(NorceModel):
    nr_of_items_in_total: int = 0
    nr_of_validation_failures: int = 0
    messages: list[Any] = Field(default_factory=list)

    def rejected_rows(self) -> dict[int, str]:
        """Row index -> reason, from messages like ``Item [3] (PartNo 'A'): ...``."""
        rows: dict[int, str] = {}
        for message in map(str, self.messages):
            match = _ROW_INDEX.search(message)
            if match:
                rows.setdefault(int(match.group(1)), message)
        return rows


class JobResponse(NorceModel):
    """The immediate answer to an import POST. ``JobId`` is a string on the wire."""

    status_code: int | str | None = None
    description: str | None = None
    job_id: str | None = None
    validation_summary: ValidationSummary | None = None

    @field_validator("job_id", mode="before")
    @classmethod
    def _job_id_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def job_id_int(self) -> int:
        """The job id as the integer ``Job/Get`` wants; raises if the import made no job."""
        if self.job_id is None or not self.job_id.strip():
            raise ValueError(f"import answered without a JobId: {self.description!r}")
        return int(self.job_id)


class Job(NorceModel):
    job_id: int
    status_id: JobStatus
    storage_name: str | None = None
    totals: int | None = None
    inserts: int | None = None
    updates: int | None = None
    fail: int | None = None
    start: datetime | None = None
    stop: datetime | None = None
    last_updated: datetime | None = None
    is_finished: bool | None = None
    run_time: str | None = None  # .NET TimeSpan text, e.g. "00:00:04"

    @property
    def status(self) -> JobStatus:
        return self.status_id

    @property
    def is_final(self) -> bool:
        return self.status_id.is_final


class JobLogEntry(NorceModel):
    severity_id: int
    message: str
    time_stamp: datetime | None = None
    imported_row: Any = None

    @property
    def severity(self) -> LogSeverity | None:
        try:
            return LogSeverity(self.severity_id)
        except ValueError:
            return None

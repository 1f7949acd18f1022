"""Connect jobs: the record Job/Get shows, and the runner (a queue served by N workers).

Lifecycle: 6 Queued (waiting for a worker) -> 1 Initialized -> 5 Validating -> one of
2 Succeeded, 3 Failed, 4 Validation failed. The lead time is spent half Initialized,
half Validating. Status rule (documented choice): a job whose rows ALL failed
validation (and that had at least one row) ends 4 Validation failed and writes
nothing; a job with some failing rows imports the others and ends 2 Succeeded with
``Fail`` = the number of failing rows and one error log line per failing row.
An injected failure ends 3 Failed and writes nothing. An injected hang leaves the job
in 5 Validating for good; it does not keep a worker busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import IO, TYPE_CHECKING, Any

import orjson

from norce_simulator.clock import now_iso, run_time
from norce_simulator.header import ConnectHeader
from norce_simulator.kinds import ItemError
from norce_simulator.writer import Writer, WriteResult

if TYPE_CHECKING:
    from norce_simulator.events import EventDispatcher
    from norce_simulator.state import SimState

log = logging.getLogger(__name__)


class JobStatus(IntEnum):
    INITIALIZED = 1
    SUCCEEDED = 2
    FAILED = 3
    VALIDATION_FAILED = 4
    VALIDATING = 5
    QUEUED = 6


STATUS_NAMES = {s: s.name.title().replace("_", "") for s in JobStatus}
FINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.VALIDATION_FAILED}
SEVERITY_INFO, SEVERITY_WARNING, SEVERITY_ERROR = 1, 2, 3
MAX_MESSAGES = 1000  # validation messages kept per job (response and log)


@dataclass
class Job:
    id: int
    kind: str
    endpoint: str
    header: ConnectHeader
    storage_name: str
    spool: IO[bytes] | None  # accepted rows, one JSON object per line
    totals: int = 0
    fail: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)  # (row index, message)
    status: JobStatus = JobStatus.QUEUED
    inserts: int = 0
    updates: int = 0
    deactivated: int = 0
    created: str = field(default_factory=now_iso)
    start: str | None = None
    stop: str | None = None
    last_updated: str = field(default_factory=now_iso)
    started_at: float | None = None
    stopped_at: float | None = None
    hung: bool = False
    log: list[dict[str, Any]] = field(default_factory=list)
    status_history: list[tuple[int, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status_history.append((int(self.status), time.monotonic()))

    @property
    def is_finished(self) -> bool:
        return self.status in FINAL

    def set_status(self, status: JobStatus) -> None:
        self.status = status
        self.last_updated = now_iso()
        self.status_history.append((int(status), time.monotonic()))

    def add_log(self, severity: int, message: str, row: int | None = None) -> None:
        self.log.append(
            {"SeverityId": severity, "Message": message, "TimeStamp": now_iso(), "ImportedRow": row}
        )

    def rows(self) -> Iterator[dict[str, Any]]:
        if self.spool is None:
            return
        self.spool.seek(0)
        for line in self.spool:
            yield orjson.loads(line)

    def close_spool(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    def to_api(self) -> dict[str, Any]:
        """The Job/Get answer."""
        elapsed = None
        if self.started_at is not None:
            elapsed = (self.stopped_at or time.monotonic()) - self.started_at
        return {
            "JobId": self.id,
            "StatusId": int(self.status),
            "StorageName": self.storage_name,
            "Totals": self.totals,
            "Inserts": self.inserts,
            "Updates": self.updates,
            "Fail": self.fail,
            "Start": self.start,
            "Stop": self.stop,
            "LastUpdated": self.last_updated,
            "IsFinished": self.is_finished,
            "RunTime": run_time(elapsed) if elapsed is not None else None,
        }


class JobRunner:
    def __init__(self, state: SimState, events: EventDispatcher) -> None:
        self.state = state
        self.events = events
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        state.on_reset(self._reset)

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"norce-sim-job-worker-{i}")
            for i in range(self.state.config.workers)
        ]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        for job in self.state.jobs.values():
            job.close_spool()

    def _reset(self) -> None:
        # Drop queued and running jobs; fresh workers serve the fresh state.
        for task in self._workers:
            task.cancel()
        for job in self.state.jobs.values():
            job.close_spool()
        self._queue = asyncio.Queue()
        if self._workers:
            self.start()

    def submit(self, job: Job) -> None:
        self.state.jobs[job.id] = job
        self._queue.put_nowait(job)

    async def _work(self) -> None:
        queue = self._queue
        while True:
            job = await queue.get()
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a simulator bug must not kill the worker
                log.exception("job %s crashed", job.id)
                self._finish(job, JobStatus.FAILED, f"Import failed: {exc}")
            finally:
                if not job.hung:
                    job.close_spool()

    async def _run(self, job: Job) -> None:
        faults = self.state.faults
        lead = self.state.config.lead_time_s
        job.started_at = time.monotonic()
        job.start = now_iso()
        job.set_status(JobStatus.INITIALIZED)
        job.add_log(SEVERITY_INFO, "Starting import.")
        await asyncio.sleep(lead / 2 + faults.job_extra_lead_time_s)
        job.set_status(JobStatus.VALIDATING)
        for index, message in job.failures:
            job.add_log(SEVERITY_ERROR, message, index)
        if job.fail > len(job.failures):
            job.add_log(SEVERITY_ERROR, f"{job.fail - len(job.failures)} more rows failed.")
        await asyncio.sleep(lead / 2)

        if faults.hang_next_jobs > 0:
            faults.hang_next_jobs -= 1
            job.hung = True  # stays Validating; the worker moves on
            return
        if faults.fail_next_jobs > 0 or (
            faults.fail_job_rate and self.state.rng.random() < faults.fail_job_rate
        ):
            if faults.fail_next_jobs > 0:
                faults.fail_next_jobs -= 1
            self._finish(job, JobStatus.FAILED, "Import failed: simulated failure (injected).")
            return
        if job.totals > 0 and job.fail == job.totals:
            self._finish(job, JobStatus.VALIDATION_FAILED, "Validation failed: no valid rows.")
            return

        writer = Writer(self.state, self.events.item_changed)
        res = WriteResult()
        for i, row in enumerate(job.rows()):
            if self.state.missing_reference(job.kind, row) is not None:
                # Norce ignores it without a log line (documented as unknown: the worst
                # case); the only sign is the row's absence in Query.
                continue
            try:
                if not writer.apply(job.kind, row, job.header, job.id, res):
                    job.add_log(
                        SEVERITY_WARNING, "Row ignored: a mandatory price field is empty.", i
                    )
            except ItemError as exc:  # a rule only the write can check (a new company's)
                job.fail += 1
                job.add_log(SEVERITY_ERROR, str(exc), i)
            if i % 500 == 499:
                job.inserts, job.updates = res.inserts, res.updates
                await asyncio.sleep(0)  # let HTTP handlers and other workers run
        if job.header.FullFile:
            job.deactivated = writer.deactivate_missing(job.kind, res, job.id)
            if job.deactivated:
                job.add_log(SEVERITY_INFO, f"FullFile: {job.deactivated} items deactivated.")
        job.inserts, job.updates = res.inserts, res.updates
        self._finish(job, JobStatus.SUCCEEDED)

    def _finish(self, job: Job, status: JobStatus, error: str | None = None) -> None:
        if error:
            job.add_log(SEVERITY_ERROR, error)
        job.add_log(SEVERITY_INFO, "Import finished.")
        job.stopped_at = time.monotonic()
        job.stop = now_iso()
        job.set_status(status)
        self.events.job_completed(job.id, int(status))

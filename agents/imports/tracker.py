"""Job tracking: folds job events into the ``jobs`` table and, on the leader, watches
every open job until it ends.

The leader polls ``Job/Get`` with backoff (a ``JobCompletedEvent`` routed from the export
path makes the next poll immediate), records Norce's log errors of failed jobs, re-queues
their keys from current state, flags jobs past the lead-time limit, marks failed jobs
superseded once a later full import of their kind succeeded, and resolves intents whose
POST outcome is unknown (the worker died between POST and recording the JobId).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from agents.config.runtime import NorceClients
from agents.config.sync_config import SyncConfig
from agents.imports.job_faults import JobFaults
from agents.imports.jobs import (
    Action,
    FlagOverdue,
    JobRecord,
    LateFinishResend,
    Limits,
    Memory,
    Poll,
    ResolveOrphan,
    SettleFailure,
    Supersede,
    apply_job_event,
    decide,
)
from agents.imports.ledger import JobLedger
from agents.imports.requeue_keys import batch_keys, state_keys
from agents.imports.retention import to_prune
from norce.jobs import LogSeverity
from streams import metrics
from streams.messages import (
    JobCompleted,
    JobEvent,
    JobLog,
    LateFinish,
    Lost,
    Overdue,
    Pruned,
    RequeueCommand,
    Requeued,
    RequeueReason,
    Settled,
    Status,
    Superseded,
    job_events_message,
)
from streams.outage import NORCE
from streams.settings import Settings
from streams.topics import import_commands_topic

log = logging.getLogger(__name__)

# One acknowledged record: (topic, key, value, partition).
Send = Callable[[str, bytes, bytes, int], Awaitable[Any]]


class JobTracker:
    """The job-events agent's fold and the leader's watch and prune timers' bodies."""

    def __init__(
        self,
        settings: Settings,
        config: SyncConfig,
        clients: NorceClients,
        jobs: JobLedger,
        batches_topic: str,
        send: Send,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.settings = settings
        self.config = config
        self.clients = clients
        self.jobs = jobs
        self.batches_topic = batches_topic
        self._send = send
        self._should_stop = should_stop
        self.memory = Memory()
        self.limits = Limits.of(settings)
        self.faults = JobFaults(jobs.record)

    async def on_event(self, key: bytes, value: Any, offset: int) -> None:
        """One record of the job-events topic (the agent's body)."""
        try:
            message = job_events_message(value)
        except ValidationError as error:
            log.warning("job event at offset %s skipped: %s", offset, error)
            return
        if isinstance(message, JobCompleted):
            self.memory.note_completed(message.job_id)  # the next tick polls it
            return
        try:
            await self.fold(key, message)
        except Exception as error:  # a record the ledger cannot hold: that job's, not ours
            if self._should_stop():
                raise  # its write was not acknowledged: not past this event
            log.warning(
                "job event at offset %s not folded (%s: %s)",
                offset,
                type(error).__name__,
                error,
            )

    async def fold(self, key: bytes, message: JobEvent) -> None:
        if isinstance(message, Pruned):
            if key in self.jobs:
                await self.jobs.store(key, None)  # a tombstone: every mirror drops the record
            return
        current = self.jobs.get(key)
        record = JobRecord.model_validate(current) if current is not None else None
        updated = apply_job_event(record, message)
        if updated is not None:
            await self.jobs.store(key, updated.model_dump(mode="json"))
            if updated.is_final and (record is None or not record.is_final):
                metrics.jobs_finished.inc(kind=updated.kind, status=updated.status)
                if updated.lead_time_s is not None:
                    metrics.job_lead_time.observe(
                        updated.lead_time_s, kind=updated.kind, mode=updated.mode
                    )

    async def watch_jobs(self) -> None:
        now = time.time()
        records = self.jobs.records()
        self.faults.forget_all_but(r.batch_id for r in records)
        self.memory.prune(records, now)
        for record in records:
            # Whatever one job's step raises is recorded on that job; the others go on.
            await self.faults.run(
                record.batch_id, lambda record=record: self._act(record, records, now)
            )

    async def prune_jobs(self) -> None:
        """Finished records past the retention go (``agents.imports.retention``)."""
        batch_ids = to_prune(
            self.jobs.records(),
            time.time(),
            retention_s=self.settings.job_retention_s,
            max_records=self.settings.job_retention_max,
        )
        for batch_id in batch_ids:
            await self.jobs.record(Pruned(batch_id=batch_id))
        if batch_ids:
            log.info("jobs ledger: %d finished job records pruned", len(batch_ids))

    async def _act(self, record: JobRecord, records: list[JobRecord], now: float) -> None:
        for action in decide(record, records, now, self.limits, self.memory):
            if await self._execute(action, record) and action.once is not None:
                self.memory.done.add((record.batch_id, action.once))

    async def _execute(self, action: Action, record: JobRecord) -> bool:
        """Carry out one decided action; False when it turned out there was nothing to do."""
        match action:
            case Poll():
                await self._poll(record, action.next_poll_at)
            case FlagOverdue():
                limit = self.limits.lead_time_limit_s
                reason = f"not finished after {limit:.0f}s"
                await self.jobs.record(Overdue(batch_id=record.batch_id, reason=reason))
                if action.requeue:
                    await self._requeue(record, reason="overdue")
            case ResolveOrphan():
                if action.ask_norce:
                    connect = self.clients.for_source(record.source).connect
                    if await connect.list_jobs(is_finished=False):
                        return False  # one of them may be this intent's job
                await self.jobs.record(Lost(batch_id=record.batch_id))
            case Supersede():
                for batch_id in action.batch_ids:
                    log.info("job %s superseded by full import %s", batch_id, action.by)
                    await self.jobs.record(Superseded(batch_id=batch_id, by=action.by))
                if action.settle_by:
                    await self.jobs.record(Settled(batch_id=record.batch_id))
            case SettleFailure():
                await self._settle_failure(record, requeue=action.requeue)
            case LateFinishResend():
                await self._requeue(record, reason="late_finish")
                await self.jobs.record(LateFinish(batch_id=record.batch_id))
        return True

    async def _poll(self, record: JobRecord, next_poll_at: float) -> None:
        assert record.job_id is not None
        self.memory.polled(record.job_id)
        job = await self.clients.for_source(record.source).connect.get_job(record.job_id)
        NORCE.answered()
        metrics.norce_calls.inc(api="connect", outcome="ok")
        await self.jobs.record(
            Status(
                batch_id=record.batch_id,
                status_id=int(job.status_id),
                inserts=job.inserts,
                updates=job.updates,
                fail=job.fail,
                next_poll_at=next_poll_at,
            )
        )

    async def _settle_failure(self, record: JobRecord, *, requeue: bool) -> None:
        connect = self.clients.for_source(record.source).connect
        if record.job_id is not None:
            entries = await connect.get_job_log(record.job_id)
            errors = [e.message for e in entries if (e.severity_id or 0) >= LogSeverity.ERROR][:20]
            if errors:
                await self.jobs.record(JobLog(batch_id=record.batch_id, errors=errors))
        if requeue:
            await self._requeue(record, reason="failed")
        await self.jobs.record(Settled(batch_id=record.batch_id))

    async def _requeue(self, record: JobRecord, *, reason: RequeueReason) -> None:
        """Put the batch's keys back in pending; the next delta sends their current state.
        Each key's ``requeue`` command goes to the import-commands partition of the input
        partition that holds the key, so its projector applies it at its next checkpoint."""
        if record.batch_ref is None:
            return
        binding = self.config.binding_for(record.source, record.kind)
        keys = await batch_keys(self.settings, record, self.batches_topic)
        if keys is None:  # the batch record is gone: every key of the pair, from state
            keys = await state_keys(self.settings, binding.topic, record.source, record.kind)
            log.warning(
                "job %s: re-queuing all %d keys of %s|%s from state instead",
                record.batch_id, len(keys), record.source, record.kind,
            )  # fmt: skip
        commands = import_commands_topic(self.settings, binding.topic)
        command = RequeueCommand(reason=reason, batch_id=record.batch_id).to_bytes()
        sends = [self._send(commands, key.encode(), command, partition) for key, partition in keys]
        await asyncio.gather(*sends)
        await self.jobs.record(Requeued(batch_id=record.batch_id, reason=reason, keys=len(sends)))
        log.info(
            "job %s %s: %d keys re-queued from current state", record.batch_id, reason, len(sends)
        )

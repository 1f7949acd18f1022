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
from typing import Any

import orjson
from pydantic import ValidationError

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
from agents.imports.pipeline import batches, config, job_events, jobs
from agents.imports.requeue_keys import batch_keys, state_keys
from agents.imports.retention import to_prune
from agents.imports.submit import clients, job_records, record_job_event
from norce.jobs import LogSeverity
from streams import metrics
from streams.kafka import send_acked, send_until_acked
from streams.main import app, settings
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
from streams.topics import import_commands_topic

log = logging.getLogger(__name__)


@app.agent(job_events)
async def track_jobs(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        try:
            message = job_events_message(event.value)
        except ValidationError as error:
            log.warning("job event at offset %s skipped: %s", event.message.offset, error)
            continue
        if isinstance(message, JobCompleted):
            memory.note_completed(message.job_id)  # the next tick polls it
            continue
        try:
            await _fold(event.key, message)
        except Exception as error:  # a record the ledger cannot hold: that job's, not ours
            if app.should_stop:
                raise  # its write was not acknowledged: not past this event
            log.warning(
                "job event at offset %s not folded (%s: %s)",
                event.message.offset,
                type(error).__name__,
                error,
            )


async def _fold(key: bytes, message: JobEvent) -> None:
    if isinstance(message, Pruned):
        if key in jobs:
            await _store(key, None)  # a tombstone: every mirror drops the record
        return
    current = jobs.get(key)
    record = JobRecord.model_validate(current) if current is not None else None
    updated = apply_job_event(record, message)
    if updated is not None:
        await _store(key, updated.model_dump(mode="json"))
        if updated.is_final and (record is None or not record.is_final):
            metrics.jobs_finished.inc(kind=updated.kind, status=updated.status)
            if updated.lead_time_s is not None:
                metrics.job_lead_time.observe(
                    updated.lead_time_s, kind=updated.kind, mode=updated.mode
                )


async def _store(key: bytes, value: dict[str, Any] | None) -> None:
    """The ledger's write, acknowledged before the agent moves on (issue 23, item 9).

    ``jobs[key] = value`` only queues the changelog record in Faust's producer buffer, and
    Faust may commit the job event's offset before it is sent (docs/design-notes.md, "Why
    not a Faust agent"): a SIGKILL then loses a ``posted`` for good. So the record goes to
    the changelog here and is awaited; only then is the local table written, directly
    (``jobs.data``, which sends nothing). The event is acknowledged when the agent takes
    the next one, after this returned."""
    changelog = jobs.changelog_topic.get_topic_name()
    payload = None if value is None else orjson.dumps(value)
    await send_until_acked(app, changelog, key, payload, partition=0)  # one partition
    if value is None:
        jobs.data.pop(key, None)
    else:
        jobs.data[key] = value


memory = Memory()
limits = Limits.of(settings)
faults = JobFaults(record_job_event)


@app.timer(settings.job_poll_tick_s, on_leader=True)
async def watch_jobs() -> None:
    now = time.time()
    records = job_records()
    faults.forget_all_but(r.batch_id for r in records)
    memory.prune(records, now)
    for record in records:
        # Whatever one job's step raises is recorded on that job; the others go on.
        await faults.run(record.batch_id, lambda record=record: _act(record, records, now))


@app.timer(settings.job_prune_interval_s, on_leader=True)
async def prune_jobs() -> None:
    """Finished records past the retention go (``agents.imports.retention``)."""
    batch_ids = to_prune(
        job_records(),
        time.time(),
        retention_s=settings.job_retention_s,
        max_records=settings.job_retention_max,
    )
    for batch_id in batch_ids:
        await record_job_event(Pruned(batch_id=batch_id))
    if batch_ids:
        log.info("jobs ledger: %d finished job records pruned", len(batch_ids))


async def _act(record: JobRecord, records: list[JobRecord], now: float) -> None:
    for action in decide(record, records, now, limits, memory):
        if await _execute(action, record) and action.once is not None:
            memory.done.add((record.batch_id, action.once))


async def _execute(action: Action, record: JobRecord) -> bool:
    """Carry out one decided action; False when it turned out there was nothing to do."""
    match action:
        case Poll():
            await _poll(record, action.next_poll_at)
        case FlagOverdue():
            limit = limits.lead_time_limit_s
            reason = f"not finished after {limit:.0f}s"
            await record_job_event(Overdue(batch_id=record.batch_id, reason=reason))
            if action.requeue:
                await _requeue(record, reason="overdue")
        case ResolveOrphan():
            if action.ask_norce:
                connect = clients.for_source(record.source).connect
                if await connect.list_jobs(is_finished=False):
                    return False  # one of them may be this intent's job
            await record_job_event(Lost(batch_id=record.batch_id))
        case Supersede():
            for batch_id in action.batch_ids:
                log.info("job %s superseded by full import %s", batch_id, action.by)
                await record_job_event(Superseded(batch_id=batch_id, by=action.by))
            if action.settle_by:
                await record_job_event(Settled(batch_id=record.batch_id))
        case SettleFailure():
            await _settle_failure(record, requeue=action.requeue)
        case LateFinishResend():
            await _requeue(record, reason="late_finish")
            await record_job_event(LateFinish(batch_id=record.batch_id))
    return True


async def _poll(record: JobRecord, next_poll_at: float) -> None:
    assert record.job_id is not None
    memory.polled(record.job_id)
    job = await clients.for_source(record.source).connect.get_job(record.job_id)
    NORCE.answered()
    metrics.norce_calls.inc(api="connect", outcome="ok")
    await record_job_event(
        Status(
            batch_id=record.batch_id,
            status_id=int(job.status_id),
            inserts=job.inserts,
            updates=job.updates,
            fail=job.fail,
            next_poll_at=next_poll_at,
        )
    )


async def _settle_failure(record: JobRecord, *, requeue: bool) -> None:
    connect = clients.for_source(record.source).connect
    if record.job_id is not None:
        entries = await connect.get_job_log(record.job_id)
        errors = [e.message for e in entries if (e.severity_id or 0) >= LogSeverity.ERROR][:20]
        if errors:
            await record_job_event(JobLog(batch_id=record.batch_id, errors=errors))
    if requeue:
        await _requeue(record, reason="failed")
    await record_job_event(Settled(batch_id=record.batch_id))


async def _requeue(record: JobRecord, *, reason: RequeueReason) -> None:
    """Put the batch's keys back in pending; the next delta sends their current state.
    Each key's ``requeue`` command goes to the import-commands partition of the input
    partition that holds the key, so its projector applies it at its next checkpoint."""
    if record.batch_ref is None:
        return
    binding = config.binding_for(record.source, record.kind)
    keys = await batch_keys(settings, record, batches.get_topic_name())
    if keys is None:  # the batch record is gone: every key of the pair, from state
        keys = await state_keys(settings, binding.topic, record.source, record.kind)
        log.warning(
            "job %s: re-queuing all %d keys of %s|%s from state instead",
            record.batch_id, len(keys), record.source, record.kind,
        )  # fmt: skip
    commands = import_commands_topic(settings, binding.topic)
    command = RequeueCommand(reason=reason, batch_id=record.batch_id).to_bytes()
    sends = [
        send_acked(app, commands, key.encode(), command, partition=partition)
        for key, partition in keys
    ]
    await asyncio.gather(*sends)
    await record_job_event(Requeued(batch_id=record.batch_id, reason=reason, keys=len(sends)))
    log.info("job %s %s: %d keys re-queued from current state", record.batch_id, reason, len(sends))

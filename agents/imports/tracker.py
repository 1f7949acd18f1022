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

import orjson

from agents.imports.jobs import FAILED, JobRecord, apply_job_event
from agents.imports.submit import clients, job_records, record_job_event
from norce.errors import NorceError
from streams import metrics
from streams.kafka import read_record, send_acked
from streams.main import app, settings
from streams.pipeline import batches, job_events, jobs
from streams.topics import import_commands_topic

log = logging.getLogger(__name__)


@app.agent(job_events)
async def track_jobs(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        body = event.value
        if body.get("type") == "job_completed":
            _poll_now(int(body["job_id"]))
            continue
        key: bytes = event.key
        current = jobs.get(key)
        record = JobRecord.model_validate(current) if current is not None else None
        updated = apply_job_event(record, body)
        if updated is not None:
            jobs[key] = updated.model_dump(mode="json")
            if updated.is_final and (record is None or not record.is_final):
                metrics.jobs_finished.inc(kind=updated.kind, status=updated.status)
                if updated.lead_time_s is not None:
                    metrics.job_lead_time.observe(
                        updated.lead_time_s, kind=updated.kind, mode=updated.mode
                    )


_poll_soon: set[int] = set()


def _poll_now(job_id: int) -> None:
    _poll_soon.add(job_id)


@app.timer(settings.job_poll_tick_s, on_leader=True)
async def watch_jobs() -> None:
    now = time.time()
    records = job_records()
    for record in records:
        try:
            await _watch(record, records, now)
        except NorceError as error:
            log.warning("job %s: Norce call failed, retrying later: %s", record.batch_id, error)


# What this leader already did per batch: the ledger mirror shows our own events a moment
# later, and a second tick in between must not settle or re-queue the same job again.
_done: set[tuple[str, str]] = set()


def _once(record: JobRecord, action: str) -> bool:
    if (record.batch_id, action) in _done:
        return False
    _done.add((record.batch_id, action))
    return True


async def _watch(record: JobRecord, records: list[JobRecord], now: float) -> None:
    if record.status == "intent":
        await _resolve_orphan(record, now)
    elif not record.is_final:
        due = record.next_poll_at is None or record.next_poll_at <= now
        if record.job_id is not None and (due or record.job_id in _poll_soon):
            await _poll(record, now)
        overdue = now - record.submitted_at > settings.job_lead_time_limit_s
        if not record.overdue and overdue and _once(record, "overdue"):
            await _flag_overdue(record)
    elif (
        record.mode == "delta"
        and record.status == "succeeded"
        and record.resubmitted
        and not record.late_resend
    ):
        # Overdue, its keys re-sent, and Norce still ran it afterwards: it may have
        # written older values over the re-sent ones. Send the current state once more.
        if _once(record, "late"):
            await _requeue(record, reason="late_finish")
            await record_job_event(record.batch_id, {"type": "late_finish"})
    elif record.status == "succeeded" and record.mode == "full" and not record.settled:
        if _once(record, "supersede"):
            await _supersede_earlier(record, records)
            await record_job_event(record.batch_id, {"type": "settled"})
    elif record.needs_settling:
        later = _later_full_imports(record, records)
        if any(r.status == "succeeded" for r in later):
            if _once(record, "supersede"):
                by = next(r for r in later if r.status == "succeeded")
                await record_job_event(record.batch_id, {"type": "superseded", "by": by.batch_id})
        elif not any(not r.is_final for r in later) and _once(record, "settle"):
            # No later full import is on its way: retry the failed job's keys.
            await _settle_failure(record)


async def _poll(record: JobRecord, now: float) -> None:
    assert record.job_id is not None
    _poll_soon.discard(record.job_id)
    job = await clients.for_source(record.source).connect.get_job(record.job_id)
    metrics.norce_calls.inc(api="connect", outcome="ok")
    delay = min(settings.job_poll_min_s * 2 ** min(record.polls, 8), settings.job_poll_max_s)
    await record_job_event(
        record.batch_id,
        {
            "type": "status",
            "status_id": int(job.status_id),
            "inserts": job.inserts,
            "updates": job.updates,
            "fail": job.fail,
            "next_poll_at": now + delay,
        },
    )


async def _flag_overdue(record: JobRecord) -> None:
    limit = settings.job_lead_time_limit_s
    await record_job_event(
        record.batch_id, {"type": "overdue", "reason": f"not finished after {limit:.0f}s"}
    )
    if settings.overdue_policy == "resubmit" and record.mode == "delta":
        await _requeue(record, reason="overdue")


def _later_full_imports(record: JobRecord, records: list[JobRecord]) -> list[JobRecord]:
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


async def _supersede_earlier(full: JobRecord, records: list[JobRecord]) -> None:
    for r in records:
        if (
            r.source == full.source
            and r.kind == full.kind
            and r.status in FAILED
            and r.submitted_at < full.submitted_at
            and not r.settled
        ):
            log.info("job %s superseded by full import %s", r.batch_id, full.batch_id)
            await record_job_event(r.batch_id, {"type": "superseded", "by": full.batch_id})


async def _settle_failure(record: JobRecord) -> None:
    connect = clients.for_source(record.source).connect
    if record.job_id is not None:
        entries = await connect.get_job_log(record.job_id)
        errors = [e.message for e in entries if (e.severity_id or 0) >= 3][:20]
        if errors:
            await record_job_event(record.batch_id, {"type": "log", "errors": errors})
    if record.mode == "delta" and record.status == "failed":
        await _requeue(record, reason="failed")
    await record_job_event(record.batch_id, {"type": "settled"})


async def _requeue(record: JobRecord, *, reason: str) -> None:
    """Put the batch's keys back in pending; the next delta sends their current state.
    Each key's ``requeue`` command goes to the import-commands partition of the input
    partition that holds the key, so its projector applies it at its next checkpoint."""
    if record.batch_ref is None:
        return
    partition, offset = record.batch_ref
    stored = orjson.loads(await read_record(settings, batches.get_topic_name(), partition, offset))
    commands = import_commands_topic(settings, stored["topic"])
    rejected = set(record.rejected_rows)
    command = orjson.dumps({"type": "requeue", "reason": reason, "batch_id": record.batch_id})
    sends = [
        send_acked(app, commands, key.encode(), command, partition=stored["partitions"][index])
        for index, key in enumerate(stored["keys"])
        if index not in rejected
    ]
    await asyncio.gather(*sends)
    await record_job_event(
        record.batch_id, {"type": "requeued", "reason": reason, "keys": len(sends)}
    )
    log.info("job %s %s: %d keys re-queued from current state", record.batch_id, reason, len(sends))


async def _resolve_orphan(record: JobRecord, now: float) -> None:
    """An intent with no outcome: its worker died around the POST. Its keys never left
    pending; once no unfinished Norce job can be the lost one, close the record so the
    keys can go out again (with their current state)."""
    if now - record.last_event_at < settings.orphan_grace_s:
        return
    unfinished = await clients.for_source(record.source).connect.list_jobs(is_finished=False)
    overdue = now - record.submitted_at > settings.job_lead_time_limit_s
    if unfinished and not overdue:
        return
    if _once(record, "lost"):
        await record_job_event(record.batch_id, {"type": "lost"})

"""One item followed from its source change to Norce: what ``GET /items/{source}/{kind}/
{key}`` and ``norce-sync item`` show. Pure: the view (``agents.ops.item_view``) gathers the
state value, the pair's job records with the batches they sent, the dead letters and
Norce's row, and this module says what they mean for the item."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from agents.config.sync_config import InputBinding
from agents.imports import positions, projection
from agents.imports.jobs import JobRecord
from agents.reconcile.rules import Plan, differences, expect
from streams.records import DeadLetter

MAX_JOBS = 10
MAX_LETTERS = 10


@dataclass(frozen=True)
class SentBatch:
    """A delta batch of the item's pair as the batches topic holds it."""

    keys: Sequence[str]
    versions: Sequence[Sequence[int]]


def state_view(value: projection.Value) -> dict[str, Any]:
    """The state row, its version spelled out, and whether Norce was sent this row."""
    state = projection.State.of(value)
    return {
        "row": state.row,
        "deleted": state.deleted,
        "version": positions.named(state.version),
        "row_sent": state.row_sent,
    }


def pending_view(
    value: projection.Value,
    binding: InputBinding,
    open_jobs: Iterable[JobRecord],
    missing_reference: str | None = None,
) -> dict[str, Any] | None:
    """Whether the item waits for a delta, since when, and why: for a reference Norce
    does not have yet (``missing_reference``, e.g. "SKU P-1 not in Norce"), for an open
    job of its pair, or for the pair's next delta."""
    since = projection.State.of(value).pending_since
    if since is None:
        return None
    pair = f"{binding.source}/{binding.kind}"
    blocking = [job for job in open_jobs if not job.is_final]
    if missing_reference is not None:
        why = (
            f"waiting for references: {missing_reference}; it goes out in the first delta "
            "after a job that creates it succeeds or the periodic re-check finds it"
        )
    elif blocking:
        job = blocking[0]
        name = f"job {job.job_id}" if job.job_id is not None else f"batch {job.batch_id}"
        why = (
            f"waiting for {name} of {pair} ({job.status}) to end: no new delta of a pair "
            "starts while one of its jobs may still write to Norce"
        )
    else:
        why = f"waiting for the next delta of {pair} (schedule {binding.delta_schedule})"
    return {"since": since, "reason": why}


def _job_entry(job: JobRecord) -> dict[str, Any]:
    return {
        "batch_id": job.batch_id,
        "job_id": job.job_id,
        "mode": job.mode,
        "status": job.status,
        "submitted_at": job.submitted_at,
        "finished_at": job.finished_at,
        "lead_time_s": job.lead_time_s,
    }


def jobs_view(
    state_key: str,
    norce_key: str,
    jobs: Iterable[tuple[JobRecord, SentBatch | None]],
) -> list[dict[str, Any]]:
    """The jobs that carried the item, newest first: every delta whose batch holds its key
    (with the version sent), and full imports (they carry every key of the pair). A failed
    job shows the job-log lines about this row, or all of them when none names it."""
    carried: list[dict[str, Any]] = []
    for job, batch in sorted(jobs, key=lambda pair: pair[0].submitted_at, reverse=True):
        entry = _job_entry(job)
        if job.mode == "full":
            entry["carried"] = "full import: every key of the pair"
        elif batch is None:
            continue  # counted by unread_batches
        else:
            try:
                index = list(batch.keys).index(state_key)
            except ValueError:
                continue
            entry["version_sent"] = positions.named(list(batch.versions[index]))
            if index in job.rejected_rows:
                entry["rejected"] = True
        if job.errors:
            about = [line for line in job.errors if norce_key in line]
            entry["log"] = about or job.errors
        carried.append(entry)
        if len(carried) >= MAX_JOBS:
            break
    return carried


def unread_batches(jobs: Iterable[tuple[JobRecord, SentBatch | None]]) -> int:
    """Delta jobs of the pair whose batch record could not be read (gone by retention, or
    not read in time): whether they carried the key is unknown, and the view says so."""
    return sum(1 for job, batch in jobs if job.mode != "full" and batch is None)


def _key_values(raw: bytes | None) -> set[str] | None:
    """The values of a record key (a Debezium key struct or plain JSON), as text."""
    if not raw:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {raw.decode("utf-8", "replace").strip().upper()}
    if isinstance(doc, dict) and isinstance(doc.get("payload"), dict):
        doc = doc["payload"]
    values = doc.values() if isinstance(doc, dict) else [doc]
    return {str(v).strip().upper() for v in values if v is not None and not isinstance(v, dict)}


def letters_view(
    state_key: str, binding: InputBinding, norce_key: str, letters: Iterable[tuple[int, DeadLetter]]
) -> list[dict[str, Any]]:
    """The item's dead letters, newest first: rows Norce rejected name the state key; a
    record that failed before it had one is matched on its source key's values."""
    parts = {part.strip().upper() for part in norce_key.split("|")}
    found = []
    for offset, letter in letters:
        if letter.state_key is not None:
            if letter.state_key != state_key:
                continue
        elif letter.topic != binding.topic:
            continue
        else:
            values = _key_values(letter.key)
            if not values or not values <= parts:
                continue
        found.append({
            "dlq_offset": offset, "stage": letter.stage, "reason": letter.reason,
            "time": letter.time, "topic": letter.topic, "partition": letter.partition,
            "offset": letter.offset, "job_id": letter.job_id,
        })  # fmt: skip
    return found[::-1][:MAX_LETTERS]


def norce_view(
    plan: Plan, value: projection.Value, norce_row: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What Norce holds for the item's owned fields, compared with reconcile's rules."""
    expected = expect(plan, value)
    if norce_row is None:
        return {"found": False, "expected": expected.values}
    different = differences(expected, norce_row)
    return {
        "found": True,
        "matching": not different,
        "different": {
            n: {"expected": expected.values[n], "norce": norce_row.get(n)} for n in different
        },
        "unwritable": expected.unwritable,
        "not_compared": dict(plan.not_compared),
        "holds": {n: norce_row.get(n) for n in plan.fields},
    }

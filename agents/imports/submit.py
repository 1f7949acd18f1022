"""What delta and full imports share: the jobs ledger's events, the gate that keeps two
jobs with the same keys from running at once, and Norce clients per source."""

from __future__ import annotations

from typing import Any

from agents.config.runtime import NorceClients
from agents.imports.jobs import JobRecord
from agents.imports.pipeline import job_events, job_ledger
from streams.main import app, settings
from streams.messages import JobEvent

clients = NorceClients(settings)


@app.on_before_shutdown.connect
async def _close_clients(app_: Any, **_: Any) -> None:
    await clients.aclose()


async def record_job_event(event: JobEvent) -> None:
    """Append an event to the jobs ledger and wait for the broker's acknowledgement, so
    the crash-safe order (intent -> POST -> JobId) holds on disk, not only in memory."""
    # The topic's orjson codec writes the record as its JSON (``Record.to_bytes``'s shape).
    future = await job_events.send(key=event.batch_id.encode(), value=event)
    await future


def job_records() -> list[JobRecord]:
    """Every job of the cluster, as this worker's mirror of the jobs changelog has them."""
    return list(job_ledger.values.values())


def open_jobs(source: str, kind: str) -> list[JobRecord]:
    """Jobs of this (source, kind) that may still write to Norce. While one is open no new
    job for the pair is submitted: Norce runs jobs in parallel, so a newer job could
    finish first and the older one would then overwrite newer values."""
    return [
        r for r in job_records() if r.source == source and r.kind == kind and r.blocks_submissions
    ]

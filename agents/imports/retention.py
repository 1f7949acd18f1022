"""The jobs ledger's retention (issue 23, item 13): which finished job records to prune.

Without it the ledger grows by one record per submission for ever, and the tracker (every
tick) and every ``/jobs/`` request scan them all. A record is pruned once it is finished
and nothing is left to do for it, and either its last event is older than
``job_retention_s`` or more than ``job_retention_max`` such records are held (the oldest
go first). Never pruned: open jobs, failed jobs not yet settled, a re-sent delta whose
late finish is not handled yet, and the newest successful full import of each
(source, kind) (what a later full import is compared with).
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.imports.jobs import JobRecord

MAX_PER_RUN = 1_000  # tombstones per run: a first run on a large ledger is spread out


def _done(record: JobRecord) -> bool:
    if not record.is_final or record.needs_settling:
        return False
    if record.mode == "full" and record.status == "succeeded" and not record.settled:
        return False  # it still supersedes earlier failures
    return not (record.resubmitted and record.status == "succeeded" and not record.late_resend)


def to_prune(
    records: Sequence[JobRecord], now: float, *, retention_s: float, max_records: int
) -> list[str]:
    """Batch ids to prune now, oldest first (at most ``MAX_PER_RUN``)."""
    newest_full: dict[tuple[str, str], JobRecord] = {}
    for r in records:
        if r.mode == "full" and r.status == "succeeded":
            pair = (r.source, r.kind)
            if pair not in newest_full or r.submitted_at > newest_full[pair].submitted_at:
                newest_full[pair] = r
    keep = {id(r) for r in newest_full.values()}
    done = sorted(
        (r for r in records if _done(r) and id(r) not in keep), key=lambda r: r.last_event_at
    )
    excess = max(0, len(records) - max_records)
    out = [
        r.batch_id for i, r in enumerate(done) if i < excess or now - r.last_event_at > retention_s
    ]
    return out[:MAX_PER_RUN]

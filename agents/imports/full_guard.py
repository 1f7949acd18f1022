"""The mass-deactivation guard of full imports (issue 23 item 5).

``FullFile: true`` deactivates every item of the scope that the file lacks. A state
changelog lost or rebuilt empty (an operator's error on a new machine) leaves the state
with only the keys seen since, and the next full import would deactivate the rest of the
catalogue. So a full file is compared with what Norce held after the last successful full
import of the same (source, kind), as the jobs ledger recorded it: a file that would drop
more than ``full_import_max_drop_share`` of those rows is not sent unless the request
says ``force``; the refusal is the job's error, a log line and a metric.
"""

from __future__ import annotations

from collections.abc import Iterable

from agents.imports.jobs import JobRecord


def last_full_count(records: Iterable[JobRecord], source: str, kind: str) -> int | None:
    """Rows of the newest successful full import of the pair, or None when there is none."""
    done = [
        r
        for r in records
        if r.source == source and r.kind == kind and r.mode == "full" and r.status == "succeeded"
    ]
    if not done:
        return None
    newest = max(done, key=lambda r: r.finished_at or r.posted_at or r.submitted_at)
    return newest.item_count or None


def refusal(rows: int, held: int | None, max_drop_share: float) -> str | None:
    """Why a full file of ``rows`` rows must not be sent, or None when it may."""
    if held is None or rows >= held:
        return None
    dropped = held - rows
    if dropped <= held * max_drop_share:
        return None
    return (
        f"full file of {rows:,} rows would deactivate {dropped:,} of the {held:,} rows the "
        f"last successful full import sent ({dropped / held:.0%} > "
        f"{max_drop_share:.0%}, NORCE_SYNC_FULL_IMPORT_MAX_DROP_SHARE); is the state "
        "changelog complete? not sent: run `norce-sync full-import --force` if intended"
    )

"""What the ops views and commands compute, as pure functions of table values and
dead letters (no app, no broker): job listings, backlog per partition and for the
group, dead-letter aggregates, and the bearer-token check."""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from agents.imports.jobs import JobRecord
from streams.records import DeadLetter
from streams.secrets_check import secret_matches

# -- auth -----------------------------------------------------------------------------


def bearer_ok(authorization: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and secret_matches(given.strip(), token)


# -- jobs -----------------------------------------------------------------------------


class JobQuery(BaseModel):
    """``/jobs/`` query parameters (also the ``norce-sync jobs`` options)."""

    status: list[str] = Field(default_factory=list)
    source: list[str] = Field(default_factory=list)
    kind: list[str] = Field(default_factory=list)
    mode: list[str] = Field(default_factory=list)
    limit: int = Field(50, ge=1, le=1000)
    offset: int = Field(0, ge=0)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> JobQuery:
        """From a multidict (``request.query``): repeated or comma-separated values."""
        getall = getattr(params, "getall", None)

        def values(name: str) -> list[str]:
            raw = getall(name, []) if getall else [params[name]] if name in params else []
            return [v.strip() for item in raw for v in str(item).split(",") if v.strip()]

        data: dict[str, Any] = {n: values(n) for n in ("status", "source", "kind", "mode")}
        for name in ("limit", "offset"):
            if params.get(name) not in (None, ""):
                data[name] = params[name]
        return cls.model_validate(data)

    def matches(self, record: JobRecord) -> bool:
        return (
            (not self.status or record.status in self.status)
            and (not self.source or record.source in self.source)
            and (not self.kind or record.kind in self.kind)
            and (not self.mode or record.mode in self.mode)
        )


def job_view(record: JobRecord, now: float) -> dict[str, Any]:
    """A record as the views show it: all fields plus the lead time so far."""
    data = record.model_dump(mode="json")
    end = record.finished_at if record.finished_at is not None else now
    data["age_s"] = round(max(0.0, end - record.submitted_at), 3)
    data["final"] = record.is_final
    return data


def query_jobs(records: Iterable[JobRecord], query: JobQuery, now: float) -> dict[str, Any]:
    """Newest first, filtered and paged; plus counts by status and the last full import
    per (source, kind) over all records, for the dashboard."""
    everything = sorted(records, key=lambda r: r.submitted_at, reverse=True)
    matching = [r for r in everything if query.matches(r)]
    page = matching[query.offset : query.offset + query.limit]
    return {
        "total": len(matching),
        "limit": query.limit,
        "offset": query.offset,
        "jobs": [job_view(r, now) for r in page],
        "counts": dict(sorted(Counter(r.status for r in everything).items())),
        "last_full": last_full_imports(everything, now),
    }


def last_full_imports(records: Iterable[JobRecord], now: float) -> list[dict[str, Any]]:
    latest: dict[tuple[str, str], JobRecord] = {}
    for r in records:
        pair = (r.source, r.kind)
        if r.mode == "full" and (pair not in latest or r.submitted_at > latest[pair].submitted_at):
            latest[pair] = r
    return [job_view(latest[pair], now) for pair in sorted(latest)]


def find_job(records: Iterable[JobRecord], ident: str) -> JobRecord | None:
    """By batch id, or by Norce JobId."""
    candidates = list(records)
    for r in candidates:
        if r.batch_id == ident:
            return r
    if ident.isdigit():
        matches = [r for r in candidates if r.job_id == int(ident)]
        if matches:
            return max(matches, key=lambda r: r.submitted_at)
    return None


def jobs_by_status(records: Iterable[JobRecord]) -> dict[tuple[str, str, str], int]:
    return dict(Counter((r.source, r.kind, r.status) for r in records))


# -- pending backlog ------------------------------------------------------------------


def _text(key: bytes | str) -> str:
    return key.decode(errors="replace") if isinstance(key, bytes) else key


class BacklogReport(BaseModel):
    """One partition's backlog as its owner last reported it."""

    partition: int
    worker: str
    at: float
    counts: dict[str, dict[str, float]]
    url: str | None = None  # the owner's web address (item views ask it); None before 0.2
    # Rows held back for a missing reference: per pair, count and a few examples.
    waiting: dict[str, dict[str, Any]] = {}


WAITING_EXAMPLES = 10


def group_backlog(
    reports: Iterable[BacklogReport], partitions: int, now: float, stale_after: float
) -> dict[str, Any]:
    """The group's backlog per (source, kind) from the latest report of every partition."""
    totals: dict[str, dict[str, float]] = {}
    reported: dict[int, BacklogReport] = {}
    for report in reports:
        if report.partition < partitions:
            reported[report.partition] = report
    for report in reported.values():
        for pair, entry in report.counts.items():
            total = totals.setdefault(
                pair, {"keys": 0, "oldest": float("inf"), "truncated_at": 0.0}
            )
            total["keys"] += entry["keys"]
            total["oldest"] = min(total["oldest"], entry["oldest"])
            total["truncated_at"] = max(total["truncated_at"], entry.get("truncated_at", 0.0))
    backlog = []
    for pair, total in sorted(totals.items()):
        source, _, kind = pair.partition("|")
        oldest = total["oldest"] if total["keys"] else None
        backlog.append(
            {
                "source": source,
                "kind": kind,
                "keys": int(total["keys"]),
                "oldest_pending_since": oldest,
                "oldest_pending_age_s": round(now - oldest, 3) if oldest else None,
                # A truncate seen on the input (op t): never applied as deletes.
                "truncated": bool(total["truncated_at"]),
                "truncated_at": total["truncated_at"] or None,
            }
        )
    stale = sorted(p for p, r in reported.items() if now - r.at > stale_after)
    waiting: dict[str, dict[str, Any]] = {}
    for _, report in sorted(reported.items()):
        for pair, entry in report.waiting.items():
            held = waiting.setdefault(pair, {"count": 0, "examples": []})
            held["count"] += int(entry.get("count", 0))
            room = WAITING_EXAMPLES - len(held["examples"])
            held["examples"].extend(entry.get("examples", [])[: max(0, room)])
    return {
        "backlog": backlog,
        # Rows not sent because a SKU or price list they name is not in Norce.
        "waiting_for_references": dict(sorted(waiting.items())),
        "total_keys": sum(b["keys"] for b in backlog),
        "partitions": partitions,
        "partitions_missing": sorted(set(range(partitions)) - set(reported)),
        "partitions_stale": stale,
        "reported_at": {str(p): r.at for p, r in sorted(reported.items())},
        "workers": sorted({r.worker for r in reported.values()}),
    }


# -- dead letters ---------------------------------------------------------------------

MAX_REASON = 200


def dead_letter_view(letter: DeadLetter, offset: int | None = None) -> dict[str, Any]:
    """A dead letter without its payload (which may be large or personal): the stored
    sizes, and the key as text."""
    return {
        "dlq_offset": offset,
        "time": letter.time,
        "stage": letter.stage,
        "reason": letter.reason[:MAX_REASON],
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "key": _text(letter.key)[:200] if letter.key is not None else None,
        "value_bytes": len(letter.value) if letter.value is not None else None,
        "job_id": letter.job_id,
        "state_key": letter.state_key,
        "replayable": letter.topic is not None and letter.value is not None,
    }


class DlqAggregate:
    """Counts by stage and by (stage, reason) and the latest entries of the dead-letter
    topic; fed in topic order. Reasons beyond ``max_reasons`` distinct ones are counted
    under ``(other)`` so that a reason with ids in it cannot grow memory without bound."""

    def __init__(self, *, latest: int = 50, max_reasons: int = 500) -> None:
        self.total = 0
        self.undecodable = 0
        self.by_stage: Counter[str] = Counter()
        self.by_reason: Counter[tuple[str, str]] = Counter()
        self.latest: deque[dict[str, Any]] = deque(maxlen=latest)
        self.max_reasons = max_reasons
        self.end_offset = 0

    def add(self, raw: bytes | None, offset: int) -> None:
        self.end_offset = offset + 1
        self.total += 1
        try:
            letter = DeadLetter.from_bytes(raw or b"")
        except ValueError:
            self.undecodable += 1
            return
        reason = letter.reason[:MAX_REASON]
        if (letter.stage, reason) not in self.by_reason and len(self.by_reason) >= self.max_reasons:
            reason = "(other)"
        self.by_stage[letter.stage] += 1
        self.by_reason[(letter.stage, reason)] += 1
        self.latest.append(dead_letter_view(letter, offset))

    def view(self, limit: int = 50) -> dict[str, Any]:
        return {
            "total": self.total,
            "undecodable": self.undecodable,
            "by_stage": dict(sorted(self.by_stage.items())),
            "by_reason": [
                {"stage": s, "reason": r, "count": n}
                for (s, r), n in self.by_reason.most_common(100)
            ],
            "latest": list(reversed(self.latest))[:limit],
        }


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: a duration back from now (``30m``, ``2h``, ``1d``), epoch seconds, or
    an ISO 8601 time (UTC when it has no offset)."""
    now = time.time() if now is None else now
    text = text.strip()
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a duration (30m, 2h, 1d), epoch seconds or an ISO time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()

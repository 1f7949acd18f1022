"""The worker's ops surface: ``/`` (dashboard), ``/jobs/``, ``/jobs/{id}``, ``/pending/``,
``/dlq/``, ``/metrics``; the bearer-token guard; and the log set-up.

Every view answers for the whole consumer group, whichever worker is asked. Each worker
follows three topics with a plain aiokafka consumer outside the group (so it reads all
their partitions) and keeps what the views need in memory:

- the ``jobs`` table's changelog: the latest record per batch id. (Not the GlobalTable
  itself: with several workers, faust-streaming stops updating a GlobalTable on the
  workers that do not write it after their first recovery; faust-streaming issue #283.)
- ``<app id>-ops-backlog``: the projection's pending keys are partitioned, so every
  ``ops_backlog_interval_s`` each worker counts the keys of the partitions it actively
  owns and sends one report per partition, keyed by partition. Keyed by partition, a
  partition that moves to another worker is overwritten by its new owner's report,
  never counted twice, and a drained partition reports zero.
- the dead-letter topic: counts by stage and reason and the latest entries, rebuilt
  exactly from the topic on restart.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import prometheus_client
from aiohttp import web as aioweb
from faust.web import Request, Response, View
from pydantic import ValidationError

from agents.config.secrets import config_secret_values, source_secret_problems
from agents.imports.jobs import JobRecord
from agents.imports.legacy import (  # temporary (issue 18)
    clients,
    job_records,
    projector,
    reference_state,
)
from agents.ops.kafka_reads import tail_dead_letters
from agents.ops.origin import cross_site
from agents.ops.queries import (
    BacklogReport,
    DlqAggregate,
    JobQuery,
    bearer_ok,
    find_job,
    group_backlog,
    job_view,
    jobs_by_status,
    query_jobs,
)
from agents.reconcile.service import update_gauges as reconcile_gauges
from norce.errors import NorceError
from streams import metrics
from streams.kafka_reads import TopicMirror
from streams.logging import logging_config
from streams.main import app, settings
from streams.readiness import is_ready

log = logging.getLogger(__name__)

# The worker (and every app command) applies this when it sets up logging; the sync
# config's secrets are scrubbed too, and checked for demo values before the worker starts.
app.conf.logging_config = logging_config(settings, secrets=config_secret_values(settings))
app.more_secret_problems = source_secret_problems

DASHBOARD = (Path(__file__).with_name("dashboard.html")).read_text(encoding="utf-8")
JOB_LOG_TIMEOUT_S = 10.0
MAX_LOG_LINES = 500
PROMETHEUS = "text/plain; version=0.0.4"

# -- auth -------------------------------------------------------------------------------

# Open without the ops token: probes, the dashboard page itself (static, no data: its
# script sends the token with every call), both webhook routes (their own token) and the
# order receiver (Norce's Basic credentials, agents/orders/receiver.py).
OPEN_PATHS = frozenset({"/", "/health", "/ready", "/norce/events", "/norce/orders"})
OPEN_PREFIXES = ("/norce/events/",)


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


@aioweb.middleware
async def ops_auth(request: aioweb.Request, handler: Any) -> aioweb.StreamResponse:
    # Deny by default: this also guards views other modules add and Faust's own
    # /router/ and /table/ views.
    token = settings.ops_token
    if request.method == "OPTIONS" or is_open(request.path):
        return await handler(request)  # type: ignore[no-any-return]
    if token is None:
        # No token (a loopback worker): a browser on another site must not trigger deltas
        # or reconciles through a visitor's machine.
        if cross_site(request.method, request.headers, request.host):
            return aioweb.json_response(
                {"error": "cross-site request refused: use the dashboard or no browser"},
                status=403,
            )
        return await handler(request)  # type: ignore[no-any-return]
    if not bearer_ok(request.headers.get("Authorization"), token.get_secret_value()):
        return aioweb.json_response(
            {"error": "unauthorized: send Authorization: Bearer <NORCE_SYNC_OPS_TOKEN>"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="norce-sync"'},
        )
    return await handler(request)  # type: ignore[no-any-return]


app.web.web_app.middlewares.append(ops_auth)

# -- what the views read -----------------------------------------------------------------

WORKER_ID = f"{socket.gethostname()}:{settings.web_port}"
WORKER_URL = str(app.conf.canonical_url).rstrip("/")
# Compacted and short-lived: only the latest report per partition matters.
backlog_reports = app.topic(
    f"{settings.app_id}-ops-backlog",
    internal=True,
    partitions=1,
    compacting=True,
    deleting=True,
    retention=timedelta(hours=1),
)
backlog = TopicMirror(backlog_reports.get_topic_name(), BacklogReport.model_validate_json)
dead_letters = DlqAggregate()


app.register_topics(backlog_reports)  # created and confirmed at start


@app.task
async def follow_backlog() -> None:
    await backlog.follow(settings)


@app.task
async def follow_dead_letters() -> None:
    await tail_dead_letters(settings, dead_letters)


@app.timer(settings.ops_backlog_interval_s)
async def report_backlog() -> None:
    if not is_ready(app):
        return  # mid-rebalance counts would be partial
    now = time.time()
    reports = projector.backlog()
    for partition, counts in reports.items():
        report = BacklogReport(
            partition=partition,
            worker=WORKER_ID,
            at=now,
            counts=counts,
            waiting=reference_state.waiting.for_partition(partition),
            url=WORKER_URL,
        )
        await backlog_reports.send(key=str(partition).encode(), value=report.model_dump())


def group_pending(now: float) -> dict[str, Any]:
    return group_backlog(
        list(backlog.values.values()),
        max(projector.partitions.values(), default=settings.topic_partitions),
        now,
        stale_after=3 * settings.ops_backlog_interval_s,
    )


# -- views ------------------------------------------------------------------------------


@app.page("/")
async def dashboard(self: View, request: Request) -> Response:
    return self.html(DASHBOARD)


@app.page("/jobs/")
async def job_list(self: View, request: Request) -> Response:
    """Jobs, newest first. ``?status=&source=&kind=&mode=`` (repeat or comma-separate
    values), ``?limit=&offset=``."""
    try:
        query = JobQuery.from_params(request.query)
    except ValidationError as error:
        return self.json({"error": error.errors(include_url=False)}, status=400)
    return self.json(query_jobs(job_records(), query, time.time()))


@app.page("/jobs/{ident}")
class JobDetail(View):
    """One job by batch id or Norce JobId, with Norce's log lines (``Job/GetLog``)."""

    async def get(self, request: Request, ident: str) -> Response:
        record = find_job(job_records(), ident)
        if record is None:
            return self.json({"error": f"no job {ident!r}"}, status=404)
        body = job_view(record, time.time())
        body.update(await norce_log(record))
        return self.json(body)


async def norce_log(record: JobRecord) -> dict[str, Any]:
    """Norce's log of the job, fetched now; the errors stored on the record otherwise."""
    if record.job_id is None:
        return {"log_source": "record", "log": [{"message": e} for e in record.errors]}
    try:
        entries = await asyncio.wait_for(
            clients.for_source(record.source).connect.get_job_log(record.job_id),
            JOB_LOG_TIMEOUT_S,
        )
    except (NorceError, TimeoutError, OSError) as error:
        return {
            "log_source": "record",
            "log_error": f"Job/GetLog failed: {type(error).__name__}",
            "log": [{"message": e} for e in record.errors],
        }
    return {
        "log_source": "norce",
        "log": [
            {
                "severity": e.severity.name.lower() if e.severity else str(e.severity_id),
                "time": e.time_stamp.isoformat() if e.time_stamp else None,
                "message": e.message,
                "row": e.imported_row,
            }
            for e in entries[:MAX_LOG_LINES]
        ],
        "log_truncated": len(entries) > MAX_LOG_LINES,
    }


@app.page("/pending/")
async def pending_view(self: View, request: Request) -> Response:
    """Keys waiting for their next delta per (source, kind), and the rows of them held
    back for a missing reference (with examples), for the whole group."""
    return self.json(group_pending(time.time()))


@app.page("/dlq/")
async def dlq_view(self: View, request: Request) -> Response:
    """Dead letters: counts by stage and by reason, latest entries (``?limit=``)."""
    try:
        limit = max(1, min(int(request.query.get("limit", 50)), dead_letters.latest.maxlen or 50))
    except ValueError:
        return self.json({"error": "limit must be a number"}, status=400)
    return self.json(dead_letters.view(limit))


@app.page("/metrics")
async def metrics_view(self: View, request: Request) -> Response:
    """Prometheus text format; the ops gauges are computed now, for the whole group."""
    update_gauges(time.time())
    body = prometheus_client.generate_latest(metrics.REGISTRY.collector).decode()
    return self.text(body, content_type=PROMETHEUS)


def update_gauges(now: float) -> None:
    metrics.jobs_by_status.replace(
        {labels: float(n) for labels, n in jobs_by_status(job_records()).items()}
    )
    pending = group_pending(now)
    group = pending["backlog"]
    metrics.pending_keys.replace({(b["source"], b["kind"]): b["keys"] for b in group})
    metrics.pending_oldest_age.replace(
        {(b["source"], b["kind"]): b["oldest_pending_age_s"] or 0.0 for b in group}
    )
    metrics.waiting_references.replace(
        {
            tuple(pair.split("|", 1)): float(w["count"])
            for pair, w in pending["waiting_for_references"].items()
        }
    )
    metrics.dlq_records.replace({(s,): float(n) for s, n in dead_letters.by_stage.items()})
    reconcile_gauges()

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

from agents.imports.jobs import JobRecord
from agents.ops.context import OpsContext
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
from norce.errors import NorceError
from streams import metrics
from streams.app import ServiceApp
from streams.kafka_reads import TopicMirror
from streams.readiness import is_ready
from streams.settings import Settings

log = logging.getLogger(__name__)

DASHBOARD_FILE = Path(__file__).with_name("dashboard.html")
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


def ops_auth(settings: Settings) -> Any:
    """The bearer-token guard of every view but the open ones (an aiohttp middleware)."""

    @aioweb.middleware
    async def guard(request: aioweb.Request, handler: Any) -> aioweb.StreamResponse:
        # Deny by default: this also guards views other modules add and Faust's own
        # /router/ and /table/ views.
        token = settings.ops_token
        if request.method == "OPTIONS" or is_open(request.path):
            return await handler(request)  # type: ignore[no-any-return]
        if token is None:
            # No token (a loopback worker): a browser on another site must not trigger
            # deltas or reconciles through a visitor's machine.
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

    return guard


# -- what the views read -----------------------------------------------------------------


class OpsState:
    """What this worker follows for the views: every partition's backlog report (and the
    one it sends for the partitions it owns) and the dead letters."""

    def __init__(self, app: ServiceApp, ctx: OpsContext) -> None:
        settings = ctx.settings
        self.app = app
        self.ctx = ctx
        self.worker_id = f"{socket.gethostname()}:{settings.web_port}"
        self.worker_url = str(app.conf.canonical_url).rstrip("/")
        # Compacted and short-lived: only the latest report per partition matters.
        self.backlog_topic = app.topic(
            f"{settings.app_id}-ops-backlog",
            internal=True,
            partitions=1,
            compacting=True,
            deleting=True,
            retention=timedelta(hours=1),
        )
        self.backlog = TopicMirror(
            self.backlog_topic.get_topic_name(), BacklogReport.model_validate_json
        )
        self.dead_letters = DlqAggregate()

    async def follow_backlog(self) -> None:
        await self.backlog.follow(self.ctx.settings)

    async def follow_dead_letters(self) -> None:
        await tail_dead_letters(self.ctx.settings, self.dead_letters)

    async def report_backlog(self) -> None:
        if not is_ready(self.app):
            return  # mid-rebalance counts would be partial
        now = time.time()
        imports = self.ctx.imports
        for partition, counts in imports.projector.backlog().items():
            report = BacklogReport(
                partition=partition,
                worker=self.worker_id,
                at=now,
                counts=counts,
                waiting=imports.references.waiting.for_partition(partition),
                url=self.worker_url,
            )
            await self.backlog_topic.send(key=str(partition).encode(), value=report.model_dump())

    def peers(self) -> list[str]:
        """The other workers' addresses (from their backlog reports)."""
        urls = {r.url for r in self.backlog.values.values() if r.url}
        return sorted(urls - {self.worker_url})

    def group_pending(self, now: float) -> dict[str, Any]:
        settings = self.ctx.settings
        partitions = self.ctx.imports.projector.partitions.values()
        return group_backlog(
            list(self.backlog.values.values()),
            max(partitions, default=settings.topic_partitions),
            now,
            stale_after=3 * settings.ops_backlog_interval_s,
        )

    def update_gauges(self, now: float) -> None:
        records = self.ctx.imports.jobs.records()
        metrics.jobs_by_status.replace(
            {labels: float(n) for labels, n in jobs_by_status(records).items()}
        )
        pending = self.group_pending(now)
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
        metrics.dlq_records.replace({(s,): float(n) for s, n in self.dead_letters.by_stage.items()})
        self.ctx.reconcile.reconciler.update_gauges()

    async def norce_log(self, record: JobRecord) -> dict[str, Any]:
        """Norce's log of the job, fetched now; the errors stored on the record otherwise."""
        if record.job_id is None:
            return {"log_source": "record", "log": [{"message": e} for e in record.errors]}
        clients = self.ctx.imports.clients
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


# -- views ------------------------------------------------------------------------------


def register_views(app: ServiceApp, state: OpsState) -> None:
    """The guard, the followers and the dashboard, jobs, pending, dlq and metrics views."""
    settings = state.ctx.settings
    app.web.web_app.middlewares.append(ops_auth(settings))
    app.register_topics(state.backlog_topic)  # created and confirmed at start
    app.task(state.follow_backlog)
    app.task(state.follow_dead_letters)
    app.timer(settings.ops_backlog_interval_s, name="ops.report_backlog")(state.report_backlog)
    dashboard_html = DASHBOARD_FILE.read_text(encoding="utf-8")
    jobs = state.ctx.imports.jobs

    @app.page("/")
    class Dashboard(View):
        async def get(self, request: Request) -> Response:
            return self.html(dashboard_html)

    @app.page("/jobs/")
    class JobList(View):
        async def get(self, request: Request) -> Response:
            """Jobs, newest first. ``?status=&source=&kind=&mode=`` (repeat or
            comma-separate values), ``?limit=&offset=``."""
            try:
                query = JobQuery.from_params(request.query)
            except ValidationError as error:
                return self.json({"error": error.errors(include_url=False)}, status=400)
            return self.json(query_jobs(jobs.records(), query, time.time()))

    @app.page("/jobs/{ident}")
    class JobDetail(View):
        """One job by batch id or Norce JobId, with Norce's log lines (``Job/GetLog``)."""

        async def get(self, request: Request, ident: str) -> Response:
            record = find_job(jobs.records(), ident)
            if record is None:
                return self.json({"error": f"no job {ident!r}"}, status=404)
            body = job_view(record, time.time())
            body.update(await state.norce_log(record))
            return self.json(body)

    @app.page("/pending/")
    class Pending(View):
        async def get(self, request: Request) -> Response:
            """Keys waiting for their next delta per (source, kind), and the rows of them
            held back for a missing reference (with examples), for the whole group."""
            return self.json(state.group_pending(time.time()))

    @app.page("/dlq/")
    class DeadLetters(View):
        async def get(self, request: Request) -> Response:
            """Dead letters: counts by stage and by reason, latest entries (``?limit=``)."""
            most = state.dead_letters.latest.maxlen or 50
            try:
                limit = max(1, min(int(request.query.get("limit", 50)), most))
            except ValueError:
                return self.json({"error": "limit must be a number"}, status=400)
            return self.json(state.dead_letters.view(limit))

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            """Prometheus text format; the ops gauges are computed now, for the group."""
            state.update_gauges(time.time())
            body = prometheus_client.generate_latest(metrics.REGISTRY.collector).decode()
            return self.text(body, content_type=PROMETHEUS)

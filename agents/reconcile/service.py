"""Reconcile in the worker: requests on the commands topic, results on ``<app>-reconcile``.

Requests come from each pair's ``reconcile_schedule`` (the leader's timer), from
``norce-sync reconcile`` and from ``POST /reconcile/{source}/{kind}``. They share the
single-partition commands topic with full imports, so its one owner runs them one at a
time and never during a full import (which would show as transient drift). Progress and
the result go to the reconcile topic; every worker mirrors it for ``GET /reconcile/``,
the dashboard and ``/metrics``; ``norce-sync reconcile --last`` reads it directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from faust.web import Request, Response, View

from agents.config.schedules import DueTimes
from agents.config.sync_config import InputBinding
from agents.imports import legacy  # temporary (issue 18): until reconcile has its install
from agents.imports.legacy import clients, commands, config, reference_state
from agents.imports.references import refers
from agents.reconcile.core import Held, Outcome, reconcile
from agents.reconcile.rules import plan_for
from streams import metrics, topics
from streams.kafka import consumer, send_acked
from streams.kafka_reads import TopicMirror
from streams.main import app, settings
from streams.messages import (
    ReconcileProgress,
    ReconcileRequest,
    ReconcileResult,
    RequeueCommand,
    reconcile_message,
)

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0

results_topic = app.topic(
    topics.reconcile_topic(settings),
    internal=True,
    partitions=1,
    compacting=True,  # not deleting: the last result of a pair stays however old
    key_serializer="raw",
    value_serializer="raw",
)
app.register_topics(results_topic)  # created and confirmed at start
results: TopicMirror[Any] = TopicMirror(results_topic.get_topic_name(), reconcile_message)

drift = metrics.REGISTRY.gauge(
    "norce_sync_reconcile_items",
    "Items per drift class found by the last reconcile of each pair.",
    ["source", "kind", "class"],
)
last_run = metrics.REGISTRY.gauge(
    "norce_sync_reconcile_last_run_timestamp_seconds",
    "When the last reconcile of each pair started (epoch seconds).",
    ["source", "kind"],
)

_due = DueTimes()


@app.task
async def follow_results() -> None:
    await results.follow(settings)


def last_results() -> list[ReconcileResult]:
    found = [v for v in results.values.values() if isinstance(v, ReconcileResult)]
    return sorted(found, key=lambda r: (r.source, r.kind))


def update_gauges() -> None:
    """The last result per pair as gauges (every worker answers the same: use max())."""
    values: dict[tuple[str, ...], float] = {}
    started: dict[tuple[str, ...], float] = {}
    for r in last_results():
        if r.status != "ok":
            continue
        for name in ("matching", "different", "unwritable", "pending", "missing", "absent"):
            values[(r.source, r.kind, name)] = float(getattr(r, name))
        values[(r.source, r.kind, "would_deactivate")] = float(r.would_deactivate)
        started[(r.source, r.kind)] = r.started_at
    drift.replace(values)
    last_run.replace(started)


async def request_reconcile(source: str, kind: str, *, by: str, repair: bool = False) -> str:
    request_id = uuid.uuid4().hex
    request = ReconcileRequest(
        source=source, kind=kind, request_id=request_id, by=by, repair=repair
    )
    await commands.send(key=b"reconcile", value=request)
    return request_id


@app.timer(10.0, on_leader=True)
async def reconcile_schedules() -> None:
    now = time.time()
    for binding in config.inputs:
        schedule = binding.reconcile_schedule
        if schedule is not None and _due.take(binding.pair, schedule, now):
            await request_reconcile(
                binding.source, binding.kind, by="schedule", repair=binding.reconcile_repair
            )


async def run_reconcile_command(request: ReconcileRequest) -> None:
    """The commands agent's handler of a ``ReconcileRequest``; always answers a result."""
    result = await run_reconcile(request)
    await _publish(f"{request.source}|{request.kind}", result.to_bytes())
    # The progress record is done with: a tombstone, so compaction drops it.
    await _publish(f"progress:{request.request_id}", None)
    log.info(
        "reconcile %s/%s: %s, %d matching, %d different, %d missing, %d absent, %d unwritable"
        " (%.1fs)",
        result.source,
        result.kind,
        result.status,
        result.matching,
        result.different,
        result.missing,
        result.absent,
        result.unwritable,
        result.duration_s,
    )


legacy.on_install(lambda flow: flow.commands.register("reconcile", run_reconcile_command))


async def _publish(key: str, value: bytes | None) -> None:
    await send_acked(app, results_topic.get_topic_name(), key.encode(), value)


async def run_reconcile(request: ReconcileRequest) -> ReconcileResult:
    started = time.time()
    base = {
        "request_id": request.request_id,
        "source": request.source,
        "kind": request.kind,
        "by": request.by,
        "repair": request.repair,
        "started_at": started,
    }
    try:
        binding = config.binding_for(request.source, request.kind)
        plan = plan_for(binding)
    except (KeyError, ValueError) as error:
        return ReconcileResult(**base, status="unsupported", error=str(error).strip("'\""))
    try:
        outcome = await _run(binding, plan, request)
    except Exception as error:
        log.exception("reconcile of %s failed", binding.pair)
        return ReconcileResult(
            **base, status="failed", error=f"{type(error).__name__}: {error}"[:500],
            duration_s=time.time() - started,
        )  # fmt: skip
    summary = outcome.tally.summary()
    return ReconcileResult(
        **base,
        **summary,
        repaired=outcome.repaired,
        duration_s=outcome.duration_s,
        not_compared=dict(plan.not_compared),
    )


async def _run(binding: InputBinding, plan: Any, request: ReconcileRequest) -> Outcome:
    last = 0.0

    async def progress(phase: str, done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_S and done < total:
            return
        last = now
        message = ReconcileProgress(
            request_id=request.request_id,
            source=binding.source,
            kind=binding.kind,
            phase=phase,
            done=done,
            total=total,
        )
        await _publish(f"progress:{request.request_id}", message.to_bytes())

    commands_topic = topics.import_commands_topic(settings, binding.topic)
    command = RequeueCommand(reason="reconcile", batch_id=request.request_id).to_bytes()

    async def repair(keys: list[tuple[str, int]]) -> None:
        # To the import-commands partition of the key's input partition: its projector
        # makes the key pending again from its current state (as the tracker's requeue).
        await asyncio.gather(
            *(
                send_acked(app, commands_topic, key.encode(), command, partition=partition)
                for key, partition in keys
            )
        )

    pair_dir = f"{binding.source}-{binding.kind}"
    reader = consumer(settings)
    await reader.start()
    try:
        return await reconcile(
            plan,
            reader,
            topics.state_topic(settings, binding.topic),
            clients.for_source(binding.source).query.pages,
            Path(settings.data_dir) / settings.app_id / "reconcile" / pair_dir,
            progress=progress,
            repair=repair if request.repair else None,
            held=held_back(binding) if refers(binding.kind) else None,
        )
    finally:
        await reader.stop()


def held_back(binding: InputBinding) -> Held:
    """Which of these state keys are held back for a reference not in Norce (looked up
    now, grouped and cached as before a delta)."""
    session = reference_state.lookups(binding.source)
    prefix = f"{binding.source}|{binding.kind}|"

    async def held(state_keys: list[str]) -> dict[str, str]:
        rows = {}
        for state_key in state_keys:
            # A state key is source|kind|<the Norce key fields, joined by '|'>.
            parts = state_key.removeprefix(prefix).split("|")
            if len(parts) == len(binding.norce_key_fields):
                rows[state_key] = dict(zip(binding.norce_key_fields, parts, strict=True))
        reasons = await session.missing(binding.kind, list(rows.values()))
        return {k: why for k, why in zip(rows, reasons, strict=True) if why is not None}

    return held


@app.page("/reconcile/")
async def reconcile_view(self: View, request: Request) -> Response:
    """The last reconcile result per (source, kind)."""
    return self.json(
        {
            "loaded": results.caught_up.is_set(),
            "results": [r.model_dump(mode="json") for r in last_results()],
            "pairs": [
                {
                    "source": b.source,
                    "kind": b.kind,
                    "schedule": str(b.reconcile_schedule) if b.reconcile_schedule else None,
                }
                for b in config.inputs
            ],
        }
    )


@app.page("/reconcile/{source}/{kind}")
class ReconcileTrigger(View):
    async def post(self, request: Request, source: str, kind: str) -> Response:
        """Queue a reconcile of the pair now (``?repair=true`` to queue its drift for the
        next delta); 202 with the request id, whose result ``GET /reconcile/`` shows."""
        try:
            config.binding_for(source, kind)
        except KeyError as error:
            return self.json({"error": str(error.args[0])}, status=404)
        repair = request.query.get("repair", "").lower() in ("1", "true", "yes")
        request_id = await request_reconcile(source, kind, by="http", repair=repair)
        return self.json({"request_id": request_id, "repair": repair}, status=202)

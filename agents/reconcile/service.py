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

import faust

from agents.config.schedules import DueTimes
from agents.config.sync_config import InputBinding, SyncConfig
from agents.imports.references import refers
from agents.imports.wiring import ImportFlow
from agents.reconcile.core import Held, Outcome, reconcile
from agents.reconcile.rules import plan_for
from streams import metrics, topics
from streams.kafka import consumer, send_acked
from streams.kafka_reads import TopicMirror
from streams.messages import (
    ReconcileProgress,
    ReconcileRequest,
    ReconcileResult,
    RequeueCommand,
    reconcile_message,
)
from streams.settings import Settings

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0

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


class Reconciler:
    """Runs the reconcile requests the command reader hands it, one at a time, and keeps
    every worker's view of the last results (a mirror of the results topic)."""

    def __init__(
        self, app: faust.App, settings: Settings, config: SyncConfig, imports: ImportFlow
    ) -> None:
        self.app = app
        self.settings = settings
        self.config = config
        self.imports = imports
        self.results_topic_name = topics.reconcile_topic(settings)
        self.results: TopicMirror[Any] = TopicMirror(self.results_topic_name, reconcile_message)
        self._due = DueTimes()

    async def follow_results(self) -> None:
        await self.results.follow(self.settings)

    def last_results(self) -> list[ReconcileResult]:
        found = [v for v in self.results.values.values() if isinstance(v, ReconcileResult)]
        return sorted(found, key=lambda r: (r.source, r.kind))

    def update_gauges(self) -> None:
        """The last result per pair as gauges (every worker answers the same: use max())."""
        values: dict[tuple[str, ...], float] = {}
        started: dict[tuple[str, ...], float] = {}
        for r in self.last_results():
            if r.status != "ok":
                continue
            for name in ("matching", "different", "unwritable", "pending", "missing", "absent"):
                values[(r.source, r.kind, name)] = float(getattr(r, name))
            values[(r.source, r.kind, "would_deactivate")] = float(r.would_deactivate)
            started[(r.source, r.kind)] = r.started_at
        drift.replace(values)
        last_run.replace(started)

    async def request(self, source: str, kind: str, *, by: str, repair: bool = False) -> str:
        request_id = uuid.uuid4().hex
        request = ReconcileRequest(
            source=source, kind=kind, request_id=request_id, by=by, repair=repair
        )
        await self.imports.commands.send(b"reconcile", request)
        return request_id

    async def schedules(self) -> None:
        now = time.time()
        for binding in self.config.inputs:
            schedule = binding.reconcile_schedule
            if schedule is not None and self._due.take(binding.pair, schedule, now):
                await self.request(
                    binding.source, binding.kind, by="schedule", repair=binding.reconcile_repair
                )

    async def run_command(self, request: ReconcileRequest) -> None:
        """The command reader's handler of a ``ReconcileRequest``; always answers a result."""
        result = await self.run(request)
        await self._publish(f"{request.source}|{request.kind}", result.to_bytes())
        # The progress record is done with: a tombstone, so compaction drops it.
        await self._publish(f"progress:{request.request_id}", None)
        log.info(
            "reconcile %s/%s: %s, %d matching, %d different, %d missing, %d absent,"
            " %d unwritable (%.1fs)",
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

    async def _publish(self, key: str, value: bytes | None) -> None:
        await send_acked(self.app, self.results_topic_name, key.encode(), value)

    async def run(self, request: ReconcileRequest) -> ReconcileResult:
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
            binding = self.config.binding_for(request.source, request.kind)
            plan = plan_for(binding)
        except (KeyError, ValueError) as error:
            return ReconcileResult(**base, status="unsupported", error=str(error).strip("'\""))
        try:
            outcome = await self._run(binding, plan, request)
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

    async def _run(self, binding: InputBinding, plan: Any, request: ReconcileRequest) -> Outcome:
        last = 0.0
        settings = self.settings

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
            await self._publish(f"progress:{request.request_id}", message.to_bytes())

        commands_topic = topics.import_commands_topic(settings, binding.topic)
        command = RequeueCommand(reason="reconcile", batch_id=request.request_id).to_bytes()

        async def repair(keys: list[tuple[str, int]]) -> None:
            # To the import-commands partition of the key's input partition: its projector
            # makes the key pending again from its current state (as the tracker's requeue).
            await asyncio.gather(
                *(
                    send_acked(self.app, commands_topic, key.encode(), command, partition=p)
                    for key, p in keys
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
                self.imports.clients.for_source(binding.source).query.pages,
                Path(settings.data_dir) / settings.app_id / "reconcile" / pair_dir,
                progress=progress,
                repair=repair if request.repair else None,
                held=self.held_back(binding) if refers(binding.kind) else None,
            )
        finally:
            await reader.stop()

    def held_back(self, binding: InputBinding) -> Held:
        """Which of these state keys are held back for a reference not in Norce (looked up
        now, grouped and cached as before a delta)."""
        session = self.imports.references.lookups(binding.source)
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

    def view(self) -> dict[str, Any]:
        """``GET /reconcile/``: the last result per (source, kind)."""
        return {
            "loaded": self.results.caught_up.is_set(),
            "results": [r.model_dump(mode="json") for r in self.last_results()],
            "pairs": [
                {
                    "source": b.source,
                    "kind": b.kind,
                    "schedule": str(b.reconcile_schedule) if b.reconcile_schedule else None,
                }
                for b in self.config.inputs
            ],
        }

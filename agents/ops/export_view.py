"""``GET /items/export/{kind}/{id}``: one export entity from its webhooks to the target
topics (:mod:`agents.ops.export_trace` says what each part means). Any worker answers:
it reads the entity's partitions from Kafka, with no group and no forwarding.

Served by the import item view's route (``/items/{source}/...`` with source ``export``,
a name no sync-config source may take), which holds an :class:`ExportTrace` of the
export flow the root built.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agents.export.events import entity_key
from agents.export.targets import build_records, key_value
from agents.export.wiring import ExportFlow
from agents.ops import export_trace
from agents.ops.key_scan import scan_key
from norce.errors import NorceError
from streams.settings import Settings
from streams.topics import norce_events_topic

log = logging.getLogger(__name__)


class ExportTrace:
    """One export entity's trace, for the worker whose export flow is ``export``."""

    def __init__(self, settings: Settings, export: ExportFlow, worker_url: str) -> None:
        self.settings = settings
        self.export = export
        self.worker_url = worker_url

    async def _current_digests(
        self, kind: str, entity_id: str
    ) -> tuple[dict[str, str], str | None]:
        """Per target topic, the digest of the record a lookup now would produce (one
        Query lookup, mapped as enrichment maps it), or why it is not known."""
        try:
            key_value(kind, entity_id)
        except ValueError as error:  # enrichment dead-letters its events the same way
            return {}, f"bad entity key: {error}"
        try:
            document = await self.export.enricher.lookup.fetch(kind, entity_id)
        except (NorceError, ValueError) as error:
            return {}, f"Query lookup failed: {error}"
        built = build_records(
            kind, entity_id, document, self.export.specs[kind], event_types=[],
            received_at=time.time(),
        )  # fmt: skip
        return {r.topic: r.digest for r in built.records}, None

    async def trace(self, kind: str, entity_id: str) -> tuple[int, dict[str, Any]]:
        """(status, body) for the entity."""
        settings, all_specs = self.settings, self.export.specs
        problem = export_trace.kind_problem(kind, all_specs)
        if problem is not None:
            return 404, {"error": problem}
        key = entity_key(kind, entity_id)
        events_topic = norce_events_topic(settings)
        specs = all_specs[kind]
        events, digests, *targets = await asyncio.gather(
            scan_key(settings, events_topic, key.encode(), want=export_trace.MAX_EVENTS),
            scan_key(settings, self.export.digests_topic.name, key.encode()),
            *(scan_key(settings, spec.topic, entity_id.encode()) for spec in specs),
        )
        if events is None:
            return 404, {"error": f"the events topic {events_topic} does not exist"}
        current, lookup_error = await self._current_digests(kind, entity_id)
        stored = export_trace.stored_digests(digests) if digests is not None else {}
        target_views = []
        for spec, scan in zip(specs, targets, strict=True):
            if scan is None:
                missing = {"last_record": None, "note": "topic does not exist"}
                target_views.append({"target": spec.target, "topic": spec.topic, **missing})
                continue
            view = export_trace.target_view(
                spec.target, scan, stored.get(spec.topic), current.get(spec.topic)
            )
            target_views.append(view)
        body: dict[str, Any] = {
            "kind": kind,
            "id": entity_id,
            "key": key,
            "worker": self.worker_url,
            "events_topic": events.view(),
            "events": export_trace.events_view(events),
            "targets": target_views,
            "verdict": export_trace.verdict(events, target_views),
        }
        if lookup_error is not None:
            body["lookup_error"] = lookup_error
        return 200, body


# Transitional (issue 18): the item view (agents/ops/item_view.py, not yet converted)
# calls the module-level ``trace``; the root registers the worker's export trace here.
# Goes once the item view is handed an ExportTrace.

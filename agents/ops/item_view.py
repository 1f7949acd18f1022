"""``GET /items/{source}/{kind}/{key}``: one item from its source change to Norce (the
state, why it waits, the jobs that carried it, its dead letters, what Norce holds now;
:mod:`agents.ops.item_trace` says what each means).

The projection's keys are partitioned by the source's record key, which a Norce key does
not tell, so the worker asked looks in the stores it owns and, when none holds the key,
asks the other workers of the group (their addresses come with their backlog reports)
and answers with the owner's answer. ``?local=1`` asks one worker only.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx
from faust.web import Request, Response, View

from agents.config.sync_config import EXPORT, InputBinding
from agents.imports import projection
from agents.imports.jobs import JobRecord
from agents.imports.references import refers
from agents.ops import export_view, item_trace
from agents.ops.views import OpsState
from agents.reconcile.rules import Plan, plan_for
from norce.errors import NorceError
from norce.odata import and_, eq
from streams import topics
from streams.app import ServiceApp
from streams.kafka_reads import read_at, read_dead_letters
from streams.messages import BatchIntent

log = logging.getLogger(__name__)

FORWARD_TIMEOUT_S = 30.0
ANSWERED_BY = "X-Norce-Sync-Answered-By"


class ItemTracer:
    """Answers ``/items/...``: the trace of an item this worker holds, else a peer's."""

    def __init__(self, state: OpsState) -> None:
        self.state = state
        self.ctx = state.ctx
        self.export = export_view.ExportTrace(
            state.ctx.settings, state.ctx.export, state.worker_url
        )

    def _binding(self, source: str, kind: str) -> InputBinding | None:
        try:
            return self.ctx.config.binding_for(source, kind)
        except KeyError:
            return None

    async def _jobs_of(
        self, binding: InputBinding
    ) -> list[tuple[JobRecord, item_trace.SentBatch | None]]:
        records = [
            r
            for r in self.ctx.imports.jobs.records()
            if r.source == binding.source and r.kind == binding.kind
        ]
        records.sort(key=lambda r: r.submitted_at, reverse=True)
        records = records[: item_trace.MAX_JOBS * 5]  # the newest jobs are the ones asked about

        def ref(record: JobRecord) -> tuple[int, int] | None:
            return (record.batch_ref[0], record.batch_ref[1]) if record.batch_ref else None

        wanted = [r for r in map(ref, records) if r is not None]
        settings = self.ctx.settings
        stored = await read_at(settings, topics.batches_topic(settings), wanted)
        out: list[tuple[JobRecord, item_trace.SentBatch | None]] = []
        for record in records:
            at = ref(record)
            raw = stored.get(at) if at is not None else None
            batch = None
            if raw is not None:
                intent = BatchIntent.from_bytes(raw)
                batch = item_trace.SentBatch(intent.keys, intent.versions)
            out.append((record, batch))
        return out

    async def _norce_row(
        self, plan: Plan, value: dict[str, Any], norce_key: str
    ) -> dict[str, Any] | None:
        """The item as Norce's Query has it, with Connect's names (one request)."""
        spec = plan.spec
        row = projection.State.of(value).row
        for step in plan.view:
            row = row[step]
        if spec.nested is None:
            names = plan.key_names
            query = plan.query.filter(and_(*(eq(spec.query_name(n), row.get(n)) for n in names)))
        else:
            query = plan.query.filter(eq("PartNo", row.get("PartNo")))
        page = await self.ctx.imports.clients.for_source(plan.binding.source).query.page(
            spec.entity_set, query
        )
        for item in plan.items(page.value):
            if plan.key(item) == norce_key:
                return item
        return None

    async def _missing_reference(self, binding: InputBinding, value: dict[str, Any]) -> str | None:
        """Why a pending row of a referring kind is held back, as a delta would decide now
        (the reference cache first, else one Query lookup)."""
        state = projection.State.of(value)
        if not state.pending or not refers(binding.kind):
            return None
        try:
            [why] = await self.ctx.imports.references.lookups(binding.source).missing(
                binding.kind, [state.row]
            )
        except NorceError as error:
            return f"(not known: Query answered {error})"
        return why

    async def trace(
        self, binding: InputBinding, norce_key: str, partition: int, value: dict[str, Any]
    ) -> dict[str, Any]:
        state_key = f"{binding.source}|{binding.kind}|{norce_key}"
        letters = await read_dead_letters(self.ctx.settings)
        jobs = await self._jobs_of(binding)
        out: dict[str, Any] = {
            "source": binding.source,
            "kind": binding.kind,
            "key": norce_key,
            "state_key": state_key,
            "worker": self.state.worker_url,
            "partition": partition,
            "input_topic": binding.topic,
            "state": item_trace.state_view(value),
            "pending": item_trace.pending_view(
                value,
                binding,
                self.ctx.imports.jobs.open_jobs(binding.source, binding.kind),
                await self._missing_reference(binding, value),
            ),
            "jobs": item_trace.jobs_view(state_key, norce_key, jobs),
            "jobs_unread": item_trace.unread_batches(jobs),
            "dead_letters": item_trace.letters_view(
                state_key, binding, norce_key, ((s.offset, s.letter) for s in letters)
            ),
        }
        try:
            plan = plan_for(binding)
        except ValueError as error:
            out["norce"] = {"not_compared": str(error)}
            return out
        try:
            norce_row = await self._norce_row(plan, value, norce_key)
        except (NorceError, KeyError, TypeError) as error:
            out["norce"] = {"error": f"Query lookup failed: {error}"}
        else:
            out["norce"] = item_trace.norce_view(plan, value, norce_row)
        return out

    async def _ask_peers(
        self, request: Request, path: str
    ) -> tuple[int, dict[str, Any], str] | None:
        peers = self.state.peers()
        headers = {}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S) as http:
            for peer in peers:
                try:
                    answer = await http.get(f"{peer}{path}", params={"local": "1"}, headers=headers)
                except httpx.HTTPError as error:
                    log.warning("item view: worker %s did not answer: %s", peer, error)
                    continue
                if answer.status_code == 200:
                    return answer.status_code, answer.json(), peer
                if answer.status_code != 404:
                    log.warning("item view: worker %s answered %d", peer, answer.status_code)
        return None

    async def answer(
        self, request: Request, source: str, kind: str, key: str
    ) -> tuple[int, dict[str, Any], str]:
        """(status, body, the worker that answered) for ``/items/{source}/{kind}/{key}``."""
        here = self.state.worker_url
        if source == EXPORT:  # /items/export/{kind}/{id}: the export side
            status, answer = await self.export.trace(kind, key)
            return status, answer, here
        binding = self._binding(source, kind)
        if binding is None:
            pairs = ", ".join(f"{s}/{k}" for s, k in self.ctx.config.pairs())
            return 404, {"error": f"no input binds {source}/{kind} (pairs: {pairs})"}, here
        found = await self.ctx.imports.projector.lookup(binding, f"{source}|{kind}|{key}".encode())
        if found is not None:
            return 200, await self.trace(binding, key, *found), here
        if request.query.get("local") != "1":
            path = f"/items/{quote(source, safe='')}/{quote(kind, safe='')}/{quote(key, safe='|')}"
            answered = await self._ask_peers(request, path)
            if answered is not None:
                return answered
        asked = [here, *self.state.peers()]
        return 404, {"error": f"no worker holds {source}|{kind}|{key}", "asked": asked}, here


def register_item_view(app: ServiceApp, tracer: ItemTracer) -> None:
    @app.page("/items/{source}/{kind}/{key:.+}")
    class ItemView(View):
        async def get(self, request: Request, source: str, kind: str, key: str) -> Response:
            status, body, by = await tracer.answer(request, source, kind, key)
            return self.json(body, status=status, headers={ANSWERED_BY: by})
